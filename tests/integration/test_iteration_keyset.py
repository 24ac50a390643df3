"""Keyset pagination (`offload.iteration.over_rows`) on real databases: sqlite3, psycopg and
SQLAlchemy over SQLite and PostgreSQL. For every cursor a run can stop at, resuming from it
(stored as JSON, as the worker does) yields exactly the rows after it; a key that is not
unique, not there, or NULL is refused rather than skipping rows."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offload.iteration import CursorError, in_batches, over_rows, over_rows_async
from tests._engines import PG_URL, need_postgres

IDS = random.Random(13).sample(range(1, 1000), 40)
ROWS = [(i, i % 4, "O'Brien" if i == IDS[5] else f"n{i:03d}") for i in IDS]


@dataclass
class Db:
    """A database with an `items` table of ROWS, the connection the enumerator is given, and
    how a query names a parameter in that driver."""

    conn: Any
    table: str  # the table's name as a query writes it (`schema.items` on PostgreSQL)
    named: Callable[[str], str]  # a named placeholder
    positional: str | None  # the positional placeholder, if the driver has one
    setup: Callable[[str], None]  # runs one statement on the same database

    def rows(self, **kwargs: Any) -> list[tuple[dict[str, Any], Any]]:
        return [(dict(getattr(r, "_mapping", r)), c) for r, c in over_rows(self.conn, **kwargs)]


def _sqlite(tmp_path: Path) -> tuple[Any, Callable[[str], None], str]:
    path = tmp_path / "app.db"
    raw = sqlite3.connect(path, isolation_level=None)

    def run(sql: str) -> None:
        raw.execute(sql)

    return raw, run, str(path)


@pytest.fixture(
    params=[
        "sqlite3",
        "psycopg",
        "sqlalchemy-sqlite",
        "sqlalchemy-postgres",
        "sqlalchemy-session-postgres",
    ]
)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    kind: str = request.param
    if kind.endswith("sqlite") or kind == "sqlite3":
        raw, run, path = _sqlite(tmp_path)
        table = "items"
        cleanup: Callable[[], None] = raw.close
    else:
        need_postgres()
        import psycopg

        schema = f"it_{uuid.uuid4().hex[:10]}"
        raw = psycopg.connect(PG_URL, autocommit=True)
        raw.execute(f'CREATE SCHEMA "{schema}"')
        table = f"{schema}.items"

        def run(sql: str) -> None:
            raw.execute(sql)

        def cleanup() -> None:
            raw.execute(f'DROP SCHEMA "{schema}" CASCADE')
            raw.close()

    run(f"CREATE TABLE {table} (id integer PRIMARY KEY, grp integer NOT NULL, name text)")
    values = ", ".join(f"({i}, {g}, '{n.replace(chr(39), chr(39) * 2)}')" for i, g, n in ROWS)
    run(f"INSERT INTO {table} (id, grp, name) VALUES {values}")
    try:
        if kind == "sqlite3":
            yield Db(raw, table, lambda n: f":{n}", "?", run)
        elif kind == "psycopg":
            yield Db(raw, table, lambda n: f"%({n})s", "%s", run)
        else:
            import sqlalchemy as sa
            from sqlalchemy.orm import Session

            url = (
                f"sqlite:///{path}"
                if kind.endswith("sqlite")
                else PG_URL.replace("postgresql://", "postgresql+psycopg://", 1)
            )
            engine = sa.create_engine(url)
            try:
                if kind.startswith("sqlalchemy-session"):
                    with Session(engine) as session:
                        yield Db(session, table, lambda n: f":{n}", None, run)
                else:
                    with engine.connect() as conn:
                        yield Db(conn, table, lambda n: f":{n}", None, run)
            finally:
                engine.dispose()
    finally:
        cleanup()


def resume_everywhere(db: Db, **kwargs: Any) -> list[tuple[dict[str, Any], Any]]:
    """The full run, after checking that resuming after each of its rows yields the rest."""
    full = db.rows(**kwargs)
    for k in range(1, len(full) + 1):
        cursor = json.loads(json.dumps(full[k - 1][1]))
        assert db.rows(**kwargs, cursor=cursor) == full[k:], f"resumed after row {k}"
    return full


@pytest.mark.parametrize("page_size", [1, 7])
def test_a_table_by_its_primary_key_resumes_from_every_cursor(db: Db, page_size: int) -> None:
    full = resume_everywhere(db, table=db.table, page_size=page_size)
    assert [row["id"] for row, _ in full] == sorted(IDS)
    assert [cursor for _, cursor in full] == sorted(IDS)
    assert full[0][0] == dict(zip(("id", "grp", "name"), min(ROWS), strict=True))


def test_a_query_by_a_composite_key_resumes_from_every_cursor(db: Db) -> None:
    query = f"SELECT name, grp, id FROM {db.table} WHERE grp <> {db.named('skip')}"
    full = resume_everywhere(db, query=query, params={"skip": 3}, key=("grp", "name"), page_size=4)
    expected = sorted((g, n) for _, g, n in ROWS if g != 3)
    assert [tuple(cursor) for _, cursor in full] == expected
    assert ("O'Brien" in {row["name"] for row, _ in full}) == (IDS[5] % 4 != 3)


@pytest.mark.parametrize("db", ["sqlite3", "psycopg"], indirect=True)
def test_positional_parameters(db: Db) -> None:
    """DB-API drivers take positional parameters too (SQLAlchemy text takes named ones)."""
    assert db.positional is not None
    query = f"SELECT * FROM {db.table} WHERE grp = {db.positional} AND id > {db.positional}"
    full = resume_everywhere(db, query=query, params=[2, 100], page_size=3)
    assert [row["id"] for row, _ in full] == sorted(i for i in IDS if i % 4 == 2 and i > 100)


def test_a_text_cursor_is_bound_not_pasted(db: Db) -> None:
    """A cursor holding a quote (the key of the row "O'Brien") works as a parameter."""
    rows = db.rows(table=db.table, key="name", cursor="O'Brien")
    assert [row["name"] for row, _ in rows] == sorted(n for _, _, n in ROWS if n > "O'Brien")


def test_batches_of_rows_resume_from_the_last_rows_key(db: Db) -> None:
    batches = list(in_batches(over_rows(db.conn, table=db.table, page_size=6), 5))
    assert [len(batch) for batch, _ in batches] == [5] * 8
    rest = list(in_batches(over_rows(db.conn, table=db.table, cursor=batches[2][1]), 5))
    assert [c for _, c in rest] == [c for _, c in batches[3:]]


@pytest.mark.parametrize("page_size", [1, 2, 100])
def test_a_key_that_is_not_unique_is_refused(db: Db, page_size: int) -> None:
    """`grp` repeats; with one row a page the repeat lies across the page boundary, where
    paging by it would skip rows without a word."""
    with pytest.raises(ValueError, match="the key must be unique"):
        list(over_rows(db.conn, table=db.table, key="grp", page_size=page_size))


def test_a_key_missing_from_the_rows_is_refused(db: Db) -> None:
    with pytest.raises(ValueError, match="key column 'nope' is missing from the rows"):
        list(over_rows(db.conn, table=db.table, key="nope"))
    query = f"SELECT id AS ident, name FROM {db.table}"
    with pytest.raises(ValueError, match="key column 'id' is missing from the rows of the query"):
        list(over_rows(db.conn, query=query))


def test_a_null_key_is_refused(db: Db) -> None:
    db.setup(f"UPDATE {db.table} SET name = NULL WHERE id = {IDS[0]}")
    with pytest.raises(ValueError, match="'name' is NULL"):
        list(over_rows(db.conn, table=db.table, key="name", page_size=100))


def test_bad_cursors_and_arguments_are_refused(db: Db) -> None:
    with pytest.raises(CursorError, match="must be a list of 2 values"):
        over_rows(db.conn, table=db.table, key=("grp", "id"), cursor=3)
    with pytest.raises(CursorError, match="over_rows: the cursor for key 'id'"):
        over_rows(db.conn, table=db.table, cursor=[3])
    with pytest.raises(ValueError, match="not a plain SQL name"):
        over_rows(db.conn, table="items; DROP TABLE items")
    with pytest.raises(ValueError, match="not a plain SQL name"):
        over_rows(db.conn, table=db.table, key='id" --')
    with pytest.raises(ValueError, match="leave paging to the enumerator"):
        over_rows(db.conn, query=f"SELECT * FROM {db.table} LIMIT 5")
    with pytest.raises(ValueError, match="exactly one of table= or query="):
        over_rows(db.conn)


@pytest.mark.parametrize(
    "db", ["sqlalchemy-sqlite", "sqlalchemy-postgres", "sqlalchemy-session-postgres"], indirect=True
)
def test_a_core_table_on_sqlalchemy(db: Db) -> None:
    import sqlalchemy as sa

    schema, _, name = db.table.rpartition(".")
    items = sa.Table(
        name,
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("grp", sa.Integer),
        sa.Column("name", sa.Text),
        schema=schema or None,
    )
    full = resume_everywhere(db, table=items, key=("grp", "id"), page_size=6)
    assert [tuple(c) for _, c in full] == sorted((g, i) for i, g, _ in ROWS)
    with pytest.raises(ValueError, match="'made' is missing"):
        over_rows(db.conn, table=items, key="made")


def test_rows_of_a_psycopg_async_connection() -> None:
    need_postgres()
    import psycopg

    async def run() -> None:
        schema = f"it_{uuid.uuid4().hex[:10]}"
        async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
            await conn.execute(f'CREATE SCHEMA "{schema}"')
            try:
                await conn.execute(f"CREATE TABLE {schema}.t AS SELECT generate_series(1, 25) AS n")

                async def collect(cursor: Any) -> list[tuple[Any, Any]]:
                    return [
                        (row["n"], c)
                        async for row, c in over_rows_async(
                            conn, table=f"{schema}.t", key="n", page_size=4, cursor=cursor
                        )
                    ]

                full = await collect(None)
                assert full == [(n, n) for n in range(1, 26)]
                for k in range(1, 26):
                    assert await collect(full[k - 1][1]) == full[k:]
                with pytest.raises(TypeError, match="use over_rows_async"):
                    over_rows(conn, table=f"{schema}.t")
            finally:
                await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')

    asyncio.run(run())


def test_timestamp_and_uuid_keys_on_postgresql() -> None:
    """Keys psycopg returns as datetime and UUID go into the cursor as text and compare back
    against their columns, through psycopg and through a SQLAlchemy Table alike."""
    need_postgres()
    import psycopg
    import sqlalchemy as sa
    from sqlalchemy.dialects.postgresql import UUID

    schema = f"it_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            conn.execute(
                f"CREATE TABLE {schema}.ev AS SELECT n AS id, gen_random_uuid() AS ref, "
                "timestamptz '2026-01-01 00:00+00' + (n / 3) * interval '1.5 second' AS made "
                "FROM generate_series(1, 20) AS n"
            )
            for key in (("made", "id"), "ref"):
                full = list(over_rows(conn, table=f"{schema}.ev", key=key, page_size=3))
                assert len(full) == 20
                for k in range(1, 21):
                    cursor = json.loads(json.dumps(full[k - 1][1]))
                    assert (
                        list(over_rows(conn, table=f"{schema}.ev", key=key, cursor=cursor))
                        == full[k:]
                    )
            engine = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
            ev = sa.Table(
                "ev",
                sa.MetaData(),
                sa.Column("id", sa.Integer),
                sa.Column("ref", UUID(as_uuid=True)),
                sa.Column("made", sa.DateTime(timezone=True)),
                schema=schema,
            )
            try:
                with engine.connect() as alchemy:
                    for key in (("made", "id"), "ref"):
                        full = list(over_rows(alchemy, table=ev, key=key, page_size=3))
                        for k in range(1, 21):
                            cursor = json.loads(json.dumps(full[k - 1][1]))
                            assert (
                                list(over_rows(alchemy, table=ev, key=key, cursor=cursor))
                                == full[k:]
                            )
                    with pytest.raises(CursorError, match="does not read as datetime"):
                        list(over_rows(alchemy, table=ev, key=("made", "id"), cursor=["soon", 1]))
            finally:
                engine.dispose()
        finally:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_an_unknown_connection_is_refused() -> None:
    with pytest.raises(TypeError, match="conn must be a sqlite3, psycopg or SQLAlchemy"):
        over_rows(object(), table="items")


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    keys=st.lists(st.tuples(st.integers(0, 5), st.text(max_size=3)), unique=True, max_size=30),
    page_size=st.integers(1, 8),
    k=st.integers(0, 30),
)
def test_sqlite3_composite_keys_resume_from_any_cursor(
    keys: list[tuple[int, str]], page_size: int, k: int
) -> None:
    """Random composite keys (text included: empty strings, odd characters) on sqlite3."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a integer, b text, PRIMARY KEY (a, b))")
    conn.executemany("INSERT INTO t VALUES (?, ?)", keys)

    def run(cursor: Any) -> list[tuple[Any, Any]]:
        pairs = over_rows(conn, table="t", key=("a", "b"), page_size=page_size, cursor=cursor)
        return [(tuple(row.values()), c) for row, c in pairs]

    full = run(None)
    assert [row for row, _ in full] == [
        tuple(r) for r in conn.execute("SELECT * FROM t ORDER BY a, b")
    ]
    k = min(k, len(full))
    assert run(None if k == 0 else json.loads(json.dumps(full[k - 1][1]))) == full[k:]
    conn.close()
