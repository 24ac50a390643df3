"""Schema migrations: applied once, in order, versioned (the schema they make is checked against
a snapshot in test_schema_snapshot.py)."""

from __future__ import annotations

from offload.store import open_store
from offload.store._contract import Store
from offload.store._sql import migrations


def test_a_fresh_store_applies_every_migration_in_order(store_url: str) -> None:
    fresh = open_store(store_url)
    try:
        versions = [v for v, _, _ in migrations(fresh.engine)]
        assert fresh.schema_version() == 0
        assert fresh.migrate() == versions
        assert fresh.schema_version() == versions[-1]
    finally:
        fresh.close()


def test_migrate_twice_applies_nothing_the_second_time(store: Store) -> None:
    version = store.schema_version()
    assert store.migrate() == []
    assert store.schema_version() == version


def test_schema_version_is_the_highest_migration(store: Store) -> None:
    assert store.schema_version() == migrations(store.engine)[-1][0] >= 1


def test_a_second_store_on_a_migrated_database_applies_nothing(store: Store) -> None:
    other = open_store(store.url)
    try:
        assert other.migrate() == []
        assert other.schema_version() == store.schema_version()
    finally:
        other.close()
