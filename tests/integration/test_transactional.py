"""Transactional enqueue on PostgreSQL: a job enqueued on the application's own connection
commits or rolls back with the application's data (issue 3, capability 5).

Every kind of caller connection the documentation names: psycopg `Connection` and
`AsyncConnection`, SQLAlchemy `Connection` and `Session`, and their async forms. The caller's
connection is opened on the database without the store's schema, as an application's would be.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from offload import Offload
from offload._errors import ConfigurationError
from offload.store._contract import JobFilter
from offload.testing import drain
from tests._engines import PG_URL, drop_schema, make_url

SA_URL = PG_URL.replace("postgresql://", "postgresql+psycopg://", 1)


@dataclass
class Shop:
    """An application on a fresh store: a job type, what it ran, and a table of its own data."""

    app: Offload
    ran: list[int]
    table: str

    def users(self) -> list[int]:
        import psycopg

        with psycopg.connect(PG_URL) as conn:
            return [r[0] for r in conn.execute(f"SELECT id FROM {self.table} ORDER BY id")]


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    import psycopg

    url, schema = make_url("postgres", tmp_path)
    app = Offload(url)
    ran: list[int] = []

    @app.job()
    def welcome(user_id: int) -> None:
        ran.append(user_id)

    app.store.migrate()
    table = f"users_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY)")
    yield Shop(app, ran, table)
    app.close()
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
    assert schema is not None
    drop_schema(schema)


# --- one signup per kind of caller connection --------------------------------------------
# Each inserts the user and enqueues its welcome job in one transaction, then commits or rolls
# back; it returns the job's id.


def signup_psycopg(shop: Shop, user_id: int, commit: bool) -> int:
    import psycopg

    welcome = shop.app.job_type("welcome")
    with psycopg.connect(PG_URL) as conn:  # a transaction opens with the first statement
        conn.execute(f"INSERT INTO {shop.table} (id) VALUES (%s)", [user_id])
        job = welcome.options(connection=conn).enqueue(user_id=user_id)
        assert shop.app.store.job_get(job.id) is None, "visible before the caller committed"
        conn.commit() if commit else conn.rollback()
    return job.id


async def signup_psycopg_async(shop: Shop, user_id: int, commit: bool) -> int:
    import psycopg

    welcome = shop.app.job_type("welcome")
    async with await psycopg.AsyncConnection.connect(PG_URL) as conn:
        await conn.execute(f"INSERT INTO {shop.table} (id) VALUES (%s)", [user_id])
        job = await welcome.options(connection=conn).enqueue_async(user_id=user_id)
        assert shop.app.store.job_get(job.id) is None, "visible before the caller committed"
        await (conn.commit() if commit else conn.rollback())
    return job.id


def signup_sqlalchemy_connection(shop: Shop, user_id: int, commit: bool) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(SA_URL)
    try:
        with engine.connect() as conn:
            conn.execute(text(f"INSERT INTO {shop.table} (id) VALUES (:id)"), {"id": user_id})
            job = shop.app.job_type("welcome").options(connection=conn).enqueue(user_id=user_id)
            conn.commit() if commit else conn.rollback()
    finally:
        engine.dispose()
    return job.id


def signup_sqlalchemy_session(shop: Shop, user_id: int, commit: bool) -> int:
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session

    engine = create_engine(SA_URL)
    try:
        with Session(engine) as session:
            session.execute(text(f"INSERT INTO {shop.table} (id) VALUES (:id)"), {"id": user_id})
            job = shop.app.job_type("welcome").options(connection=session).enqueue(user_id=user_id)
            session.commit() if commit else session.rollback()
    finally:
        engine.dispose()
    return job.id


async def signup_sqlalchemy_async_connection(shop: Shop, user_id: int, commit: bool) -> int:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(SA_URL)
    try:
        async with engine.connect() as conn:
            insert = text(f"INSERT INTO {shop.table} (id) VALUES (:id)")
            await conn.execute(insert, {"id": user_id})
            welcome = shop.app.job_type("welcome")
            job = await welcome.options(connection=conn).enqueue_async(user_id=user_id)
            await (conn.commit() if commit else conn.rollback())
    finally:
        await engine.dispose()
    return job.id


async def signup_sqlalchemy_async_session(shop: Shop, user_id: int, commit: bool) -> int:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    engine = create_async_engine(SA_URL)
    try:
        async with AsyncSession(engine) as session:
            insert = text(f"INSERT INTO {shop.table} (id) VALUES (:id)")
            await session.execute(insert, {"id": user_id})
            welcome = shop.app.job_type("welcome")
            job = await welcome.options(connection=session).enqueue_async(user_id=user_id)
            await (session.commit() if commit else session.rollback())
    finally:
        await engine.dispose()
    return job.id


Signup = Callable[[Shop, int, bool], int | Awaitable[int]]
SIGNUPS: dict[str, Signup] = {
    "psycopg": signup_psycopg,
    "psycopg-async": signup_psycopg_async,
    "sqlalchemy-connection": signup_sqlalchemy_connection,
    "sqlalchemy-session": signup_sqlalchemy_session,
    "sqlalchemy-async-connection": signup_sqlalchemy_async_connection,
    "sqlalchemy-async-session": signup_sqlalchemy_async_session,
}


def signup(kind: str, shop: Shop, user_id: int, commit: bool) -> int:
    outcome = SIGNUPS[kind](shop, user_id, commit)
    if isinstance(outcome, int):
        return outcome
    return asyncio.run(_awaited(outcome))


async def _awaited(outcome: Awaitable[int]) -> int:
    return await outcome


@pytest.mark.parametrize("kind", SIGNUPS)
def test_a_job_enqueued_in_a_committed_transaction_runs(shop: Shop, kind: str) -> None:
    job_id = signup(kind, shop, 7, commit=True)

    assert shop.users() == [7]
    assert shop.app.get_job(job_id).refresh().state == "available"
    result = drain(shop.app)
    assert (result.ran, result.completed) == (1, 1)
    assert shop.ran == [7]


@pytest.mark.parametrize("kind", SIGNUPS)
def test_a_job_enqueued_in_a_rolled_back_transaction_never_runs(shop: Shop, kind: str) -> None:
    signup(kind, shop, 7, commit=False)

    assert shop.users() == []
    assert shop.app.store.job_list(JobFilter()) == []
    assert drain(shop.app).ran == 0
    assert shop.ran == []
    # The store is untouched: the same user signs up again and its job runs once.
    signup(kind, shop, 7, commit=True)
    assert drain(shop.app).completed == 1
    assert shop.ran == [7]


def test_an_async_connection_in_autocommit_mode_commits_the_jobs_at_once(shop: Shop) -> None:
    import psycopg

    async def enqueue() -> list[int]:
        welcome = shop.app.job_type("welcome")
        async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
            jobs = await shop.app.enqueue_many_async(
                [welcome.prepare(user_id=1), welcome.prepare(user_id=2)], connection=conn
            )
        return [j.id for j in jobs]

    ids = asyncio.run(enqueue())
    assert [r.id for r in shop.app.store.job_list(JobFilter())] == sorted(ids, reverse=True)
    assert drain(shop.app).completed == 2
    assert sorted(shop.ran) == [1, 2]


def test_the_sync_enqueue_refuses_an_async_connection(shop: Shop) -> None:
    import psycopg

    async def enqueue() -> None:
        async with await psycopg.AsyncConnection.connect(PG_URL) as conn:
            with pytest.raises(ConfigurationError, match="enqueue_async"):
                shop.app.job_type("welcome").options(connection=conn).enqueue(user_id=1)

    asyncio.run(enqueue())
    assert shop.app.store.job_list(JobFilter()) == []


class _AsyncConnection:
    """Stands for any async database connection (only its `execute` is looked at)."""

    async def execute(self, *args: Any) -> None:
        raise AssertionError("the SQLite store must not use an async connection")


def test_a_sqlite_store_refuses_an_async_connection_clearly(sqlite_url: str) -> None:
    app = Offload(sqlite_url)

    @app.job()
    def welcome(user_id: int) -> None:
        return None

    with pytest.raises(ConfigurationError, match="sqlite store cannot enqueue on an async"):
        asyncio.run(welcome.options(connection=_AsyncConnection()).enqueue_async(user_id=1))
    assert app.store.job_list(JobFilter()) == []
    app.close()
