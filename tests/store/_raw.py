"""Writing a stored job's columns behind the store's back, as damage or a foreign writer would.

The store never writes such values itself: these helpers stand for a flipped byte in the SQLite
file, a hand-edited row, or a producer of another version. Each runs on a connection of its own,
or on one from `transaction()`, so that a test can enqueue jobs and damage one of them in one
commit (no worker can claim the row before it is damaged). Columns come from a fixed list.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from offload.store._contract import Store

COLUMNS = ("args", "meta", "errors", "result", "kind")


@contextmanager
def transaction(store: Store) -> Iterator[Any]:
    """A driver connection to the store's database in an open transaction, committed at the
    end: pass it to `app.enqueue_many(..., connection=conn)` and to the helpers below."""
    if store.engine == "sqlite":
        conn = sqlite3.connect(store.path, isolation_level=None)  # type: ignore[attr-defined]
        try:
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        finally:
            conn.close()
        return
    import psycopg

    with psycopg.connect(store.conninfo) as pg:  # type: ignore[attr-defined]
        yield pg  # committed when the block ends without an error


def overwrite(store: Store, job_id: int, column: str, value: str | bytes, conn: Any = None) -> None:
    """Store `value` as the column's content. Text is stored as it is (as jsonb on PostgreSQL,
    so it must be valid JSON there); bytes are stored as TEXT holding exactly those bytes,
    which only SQLite allows (for invalid UTF-8)."""
    _check(column)
    if store.engine == "sqlite":
        sql = f"UPDATE offload_jobs SET {column} = CAST(? AS TEXT) WHERE id = ?"
        _run(store, conn, sql, value, job_id)
        return
    assert isinstance(value, str), "PostgreSQL stores only valid text"
    cast = "" if column == "kind" else "::jsonb"
    sql = f"UPDATE {{schema}}.offload_jobs SET {column} = %s{cast} WHERE id = %s"
    _run(store, conn, sql, value, job_id)


def flip_byte(store: Store, job_id: int, column: str, offset: int, conn: Any = None) -> None:
    """Make the byte at `offset` (0-based) of a SQLite TEXT column 0xFF, in SQL: what a flipped
    bit in the file leaves behind (0xFF is never part of UTF-8)."""
    _check(column)
    assert store.engine == "sqlite"
    sql = (
        f"UPDATE offload_jobs SET {column} = CAST("
        f"substr(CAST({column} AS BLOB), 1, ?) || x'ff' || substr(CAST({column} AS BLOB), ?) "
        "AS TEXT) WHERE id = ?"
    )
    _run(store, conn, sql, offset, offset + 2, job_id)


def stored(store: Store, job_id: int, column: str) -> Any:
    """The column's content as the database holds it (bytes on SQLite, text on PostgreSQL)."""
    _check(column)
    if store.engine == "sqlite":
        return _run(
            store, None, f"SELECT CAST({column} AS BLOB) FROM offload_jobs WHERE id = ?", job_id
        )
    sql = f"SELECT {column}::text FROM {{schema}}.offload_jobs WHERE id = %s"
    return _run(store, None, sql, job_id)


def _check(column: str) -> None:
    assert column in COLUMNS, f"not a column these tests corrupt: {column!r}"


def _run(store: Store, conn: Any, sql: str, *params: Any) -> Any:
    """Run one statement (on `conn`, or in a transaction of its own); a query's first value,
    or None after a change (which must have touched exactly one row)."""
    if conn is None:
        with transaction(store) as own:
            return _run(store, own, sql, *params)
    if store.engine == "postgres":
        from psycopg import sql as pgsql

        schema = pgsql.Identifier(store.schema).as_string()  # type: ignore[attr-defined]
        sql = sql.replace("{schema}", schema)
    cursor = conn.execute(sql, params)
    if cursor.description is None:
        assert cursor.rowcount == 1, f"{sql!r} changed {cursor.rowcount} rows"
        return None
    row = cursor.fetchone()
    return None if row is None else row[0]


def recount(store: Store) -> list[tuple[str, str, int]]:
    """The jobs by queue and state, counted row by row: what the store's kept counts
    (`job_counts`) must agree with."""
    sql = "SELECT queue, state, count(*) FROM {schema}.offload_jobs GROUP BY queue, state"
    if store.engine == "sqlite":
        sql = sql.replace("{schema}.", "")
    with transaction(store) as conn:
        if store.engine == "postgres":
            from psycopg import sql as pgsql

            schema = pgsql.Identifier(store.schema).as_string()  # type: ignore[attr-defined]
            sql = sql.replace("{schema}", schema)
        return sorted((q, s, int(n)) for q, s, n in conn.execute(sql).fetchall())


def run_sql(store: Store, *statements: str) -> None:
    """Run statements as they are, in one transaction ({schema} names the store's schema on
    PostgreSQL and nothing on SQLite)."""
    with transaction(store) as conn:
        for sql in statements:
            if store.engine == "postgres":
                from psycopg import sql as pgsql

                schema = pgsql.Identifier(store.schema).as_string()  # type: ignore[attr-defined]
                conn.execute(sql.replace("{schema}", schema))
            else:
                conn.execute(sql.replace("{schema}.", ""))
