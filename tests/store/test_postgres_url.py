"""The PostgreSQL URL: schema and pool settings are offload's, the rest goes to libpq."""

from __future__ import annotations

import pytest

from offload._errors import ConfigurationError
from offload.store.postgres._connect import PoolSettings, parse_url, pool_settings
from tests._engines import PG_URL, need_postgres

BASE = "postgresql://app@db.internal:5432/shop"


def test_pool_settings_default_without_query() -> None:
    assert pool_settings(BASE) == PoolSettings(1, 10, 30.0)


def test_pool_settings_come_from_the_url() -> None:
    url = f"{BASE}?schema=jobs&pool_min=2&pool_max=4&pool_timeout=2.5&sslmode=disable"
    assert pool_settings(url) == PoolSettings(2, 4, 2.5)
    conninfo, schema = parse_url(url, None)
    assert schema == "jobs"
    assert conninfo == f"{BASE}?sslmode=disable"  # libpq never sees offload's own keys


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("pool_max=0", "pool_max"),
        ("pool_min=two", "pool_min"),
        ("pool_min=1.5", "pool_min"),
        ("pool_timeout=-1", "pool_timeout"),
        ("pool_timeout=nan", "pool_timeout"),
        ("pool_timeout=inf", "pool_timeout"),
        ("pool_min=5&pool_max=2", "pool_max=2 is below pool_min=5"),
    ],
)
def test_bad_pool_settings_are_named(query: str, named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        pool_settings(f"{BASE}?{query}")


def test_a_store_uses_the_url_s_pool_settings() -> None:
    need_postgres()
    from offload.store.postgres._engine import PostgresStore

    sep = "&" if "?" in PG_URL else "?"
    store = PostgresStore(f"{PG_URL}{sep}pool_max=3&pool_timeout=4")
    try:
        assert (store.min_size, store.max_size, store.timeout) == (1, 3, 4.0)
        assert store.now() > 0  # and it connects: libpq got no unknown option
    finally:
        store.close()
