"""Keyset pagination on DB-API connections: sqlite3 and psycopg (sync and async). Rows come as
dicts of column name to value, whatever row factory the connection has."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from offload.iteration._keyset import Cursor, Keyset, Statement

Row = dict[str, Any]


def sqlite_rows(
    conn: Any, keyset: Keyset, statement: Statement, source: str
) -> Iterator[tuple[Row, Cursor]]:
    """The rows of a sqlite3 connection, page by page."""

    def run(sql: str, params: Any) -> tuple[list[str], list[tuple[Any, ...]]]:
        cur = conn.cursor()
        cur.row_factory = None  # plain tuples, whatever the connection's factory
        try:
            cur.execute(sql, params)
            names = [d[0] for d in cur.description]
            return names, cur.fetchall()
        finally:
            cur.close()

    return _pages(run, keyset, statement, source)


def psycopg_rows(
    conn: Any, keyset: Keyset, statement: Statement, source: str
) -> Iterator[tuple[Row, Cursor]]:
    """The rows of a psycopg (3) connection, page by page."""
    from psycopg.rows import tuple_row

    def run(sql: str, params: Any) -> tuple[list[str], list[tuple[Any, ...]]]:
        with conn.cursor(row_factory=tuple_row) as cur:
            cur.execute(sql, params)
            names = [d.name for d in cur.description]
            return names, cur.fetchall()

    return _pages(run, keyset, statement, source)


def _pages(
    run: Any, keyset: Keyset, statement: Statement, source: str
) -> Iterator[tuple[Row, Cursor]]:
    names, _ = run(statement.probe, statement.probe_params)
    keyset.check_columns(names, source)
    where = [names.index(k) for k in keyset.keys]
    after = keyset.after
    while True:
        sql = statement.first if after is None else statement.next
        _, fetched = run(sql, statement.params(after, keyset.page_size + 1))
        rows, more = keyset.page(fetched, lambda row: tuple(row[i] for i in where))
        for row in rows:
            after = tuple(row[i] for i in where)
            yield dict(zip(names, row, strict=True)), keyset.cursor(after)
        if not more:
            return


async def psycopg_rows_async(
    conn: Any, keyset: Keyset, statement: Statement, source: str
) -> AsyncIterator[tuple[Row, Cursor]]:
    """The rows of a psycopg AsyncConnection, page by page."""
    from psycopg.rows import tuple_row

    async def run(sql: str, params: Any) -> tuple[list[str], list[tuple[Any, ...]]]:
        async with conn.cursor(row_factory=tuple_row) as cur:
            await cur.execute(sql, params)
            names = [d.name for d in cur.description]
            return names, await cur.fetchall()

    names, _ = await run(statement.probe, statement.probe_params)
    keyset.check_columns(names, source)
    where = [names.index(k) for k in keyset.keys]
    after = keyset.after
    while True:
        sql = statement.first if after is None else statement.next
        _, fetched = await run(sql, statement.params(after, keyset.page_size + 1))
        rows, more = keyset.page(fetched, lambda row: tuple(row[i] for i in where))
        for row in rows:
            after = tuple(row[i] for i in where)
            yield dict(zip(names, row, strict=True)), keyset.cursor(after)
        if not more:
            return


def describe_source(table: str | None, query: str | None) -> str:
    """How error messages name what is paged through."""
    return f"table {table!r}" if table is not None else "the query"
