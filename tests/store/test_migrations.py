"""Schema migrations: applied once, versioned, and a fresh schema equals all of them applied."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

from offload.store import open_store
from offload.store._contract import Store
from offload.store._sql import migrations


def test_a_fresh_store_applies_every_migration_in_order(store_url: str) -> None:
    fresh = open_store(store_url)
    try:
        versions = [v for v, _, _ in migrations(fresh.engine)]
        assert fresh.schema_version() == 0
        assert fresh.migrate() == versions
        assert fresh.schema_version() == len(versions)
    finally:
        fresh.close()


def test_migrate_twice_applies_nothing_the_second_time(store: Store) -> None:
    version = store.schema_version()
    assert store.migrate() == []
    assert store.schema_version() == version


def test_schema_version_is_the_number_of_migrations(store: Store) -> None:
    assert store.schema_version() == len(migrations(store.engine)) >= 1


def test_a_second_store_on_a_migrated_database_applies_nothing(store: Store) -> None:
    other = open_store(store.url)
    try:
        assert other.migrate() == []
        assert other.schema_version() == store.schema_version()
    finally:
        other.close()


def test_fresh_schema_equals_all_migrations_applied_one_by_one(
    store: Store, tmp_path: Path
) -> None:
    if store.engine == "sqlite":
        migrated = _sqlite_schema(urlparse(store.url).path[1:])
        by_hand = tmp_path / "by_hand.db"
        conn = sqlite3.connect(by_hand)
        try:
            for _, _, sql in migrations("sqlite"):
                conn.executescript(sql)
        finally:
            conn.close()
        assert migrated == _sqlite_schema(str(by_hand))
    else:
        _compare_postgres_schemas(store)


# --- SQLite -------------------------------------------------------------------------------
def _sqlite_schema(path: str) -> list[tuple[str, str, str, str | None]]:
    """Every table, index and trigger but the migrations record, as SQLite stores its text."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master "
            "WHERE tbl_name != 'offload_migrations' ORDER BY type, name"
        ).fetchall()
    finally:
        conn.close()
    assert rows, f"{path} holds no schema"
    return rows


# --- PostgreSQL ---------------------------------------------------------------------------
def _pg_split(url: str) -> tuple[str, str]:
    """The connection URL without `schema=`, and the schema it named."""
    parts = urlparse(url)
    query = parse_qsl(parts.query)
    schema = dict(query)["schema"]
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunparse(parts._replace(query=rest)), schema


def _pg_schema(conn: Any, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    """Columns, indexes, constraints and functions of a schema but the migrations record, with
    the schema's own name taken out of their text."""

    def normal(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace(f'"{schema}".', "").replace(f"{schema}.", "")
        return value

    columns = conn.execute(
        "SELECT table_name, column_name, ordinal_position, data_type, udt_name, is_nullable, "
        "column_default, is_identity FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name NOT LIKE %s ORDER BY 1, 3",
        (schema, "%migrations%"),
    ).fetchall()
    indexes = conn.execute(
        "SELECT tablename, indexname, indexdef FROM pg_indexes "
        "WHERE schemaname = %s AND tablename NOT LIKE %s ORDER BY 1, 2",
        (schema, "%migrations%"),
    ).fetchall()
    constraints = conn.execute(
        "SELECT rel.relname, con.conname, pg_get_constraintdef(con.oid) "
        "FROM pg_constraint con JOIN pg_class rel ON rel.oid = con.conrelid "
        "JOIN pg_namespace ns ON ns.oid = rel.relnamespace "
        "WHERE ns.nspname = %s AND rel.relname NOT LIKE %s ORDER BY 1, 2",
        (schema, "%migrations%"),
    ).fetchall()
    functions = conn.execute(
        "SELECT p.proname, pg_get_function_identity_arguments(p.oid), pg_get_functiondef(p.oid) "
        "FROM pg_proc p JOIN pg_namespace ns ON ns.oid = p.pronamespace "
        "WHERE ns.nspname = %s ORDER BY 1, 2",
        (schema,),
    ).fetchall()
    return {
        name: [tuple(normal(v) for v in row) for row in rows]
        for name, rows in (
            ("columns", columns),
            ("indexes", indexes),
            ("constraints", constraints),
            ("functions", functions),
        )
    }


def _compare_postgres_schemas(store: Store) -> None:
    import psycopg

    url, schema = _pg_split(store.url)
    by_hand = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{by_hand}"')
        try:
            conn.execute(f'SET search_path TO "{by_hand}"')
            for _, _, sql in migrations("postgres"):
                conn.execute(sql)
            conn.execute("RESET search_path")
            migrated = _pg_schema(conn, schema)
            assert migrated["columns"], f"schema {schema} holds no tables"
            assert migrated == _pg_schema(conn, by_hand)
        finally:
            conn.execute(f'DROP SCHEMA "{by_hand}" CASCADE')
