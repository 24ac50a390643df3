"""`over_rows` and `over_rows_async`: keyset pagination over SQL, whichever driver the
connection comes from (sqlite3, psycopg, SQLAlchemy). The driver modules are never imported
here: a connection of a driver that is not loaded cannot be one of its instances."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

from offload.iteration._alchemy import alchemy_rows
from offload.iteration._dbapi import psycopg_rows, psycopg_rows_async, sqlite_rows
from offload.iteration._keyset import NAME, Cursor, Keyset, dbapi_statement

Params = Sequence[Any] | Mapping[str, Any] | None


def over_rows(
    conn: Any,
    table: Any = None,
    *,
    query: Any = None,
    params: Params = None,
    key: str | Sequence[str] = "id",
    page_size: int = 100,
    cursor: Cursor | None = None,
) -> Iterator[tuple[Any, Cursor]]:
    """The rows of a table or a query as `(row, key)` pairs, by keyset pagination: pages of
    `page_size` rows ordered by `key`, each starting strictly after the last key seen (never
    OFFSET). The cursor is the last row's key: one value, or a list for a composite key
    (`key=("created_at", "id")`). The key must be unique and never NULL (the primary key is
    best): a repeated or NULL key is an error, since paging would skip rows.

    `conn` is a `sqlite3.Connection`, a `psycopg.Connection`, or a SQLAlchemy `Connection` or
    `Session`. Give `table=` (a name, `schema.table`, or a SQLAlchemy `Table`) or `query=` (SQL
    text without LIMIT or OFFSET, with `params` in the driver's own placeholder style). Rows
    are dicts for sqlite3 and psycopg, SQLAlchemy `Row` objects for SQLAlchemy. Each page is
    read in the connection's current transaction: an autocommit connection (psycopg) keeps no
    transaction open across pages.
    """
    keyset = Keyset.build(key, page_size, cursor)
    what = f"table {table!r}" if isinstance(table, str) else "the query"
    if isinstance(conn, sqlite3.Connection):
        statement = dbapi_statement(keyset, table, query, params, "qmark")
        return sqlite_rows(conn, keyset, statement, what)
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None:
        if isinstance(conn, psycopg.Connection):
            statement = dbapi_statement(keyset, table, query, params, "format")
            return psycopg_rows(conn, keyset, statement, what)
        if isinstance(conn, psycopg.AsyncConnection):
            raise TypeError(f"{NAME}: for a psycopg AsyncConnection use over_rows_async")
    if _is_alchemy(conn):
        if params is not None and not isinstance(params, Mapping):
            raise ValueError(f"{NAME}: with SQLAlchemy, params must be a mapping of :name values")
        return alchemy_rows(conn, keyset, table, query, params)
    raise TypeError(
        f"{NAME}: conn must be a sqlite3, psycopg or SQLAlchemy connection (or a SQLAlchemy "
        f"Session), not {type(conn).__module__}.{type(conn).__qualname__}"
    )


def over_rows_async(
    conn: Any,
    table: str | None = None,
    *,
    query: str | None = None,
    params: Params = None,
    key: str | Sequence[str] = "id",
    page_size: int = 100,
    cursor: Cursor | None = None,
) -> AsyncIterator[tuple[dict[str, Any], Cursor]]:
    """`over_rows` for a `psycopg.AsyncConnection`, as an async iterator (`async for`)."""
    keyset = Keyset.build(key, page_size, cursor)
    psycopg = sys.modules.get("psycopg")
    if psycopg is None or not isinstance(conn, psycopg.AsyncConnection):
        raise TypeError(
            f"over_rows_async: conn must be a psycopg.AsyncConnection, not "
            f"{type(conn).__module__}.{type(conn).__qualname__}"
        )
    statement = dbapi_statement(keyset, table, query, params, "format")
    what = f"table {table!r}" if table is not None else "the query"
    return psycopg_rows_async(conn, keyset, statement, what)


def _is_alchemy(conn: Any) -> bool:
    engine = sys.modules.get("sqlalchemy.engine")
    orm = sys.modules.get("sqlalchemy.orm")
    return (engine is not None and isinstance(conn, engine.Connection)) or (
        orm is not None and isinstance(conn, orm.Session)
    )
