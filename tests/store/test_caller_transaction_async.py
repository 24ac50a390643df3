"""job_insert_many_async on a caller's async connection: the jobs share the caller's transaction.

Only PostgreSQL has an async driver (psycopg's `AsyncConnection`); an engine without one
refuses an async connection with a `ConfigurationError` that says what to do instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

import pytest

from offload._errors import ConfigurationError
from offload.store._contract import Inserted, JobFilter, NewJob, Store

from ._helpers import claim_one, get, insert, new_job


def _run_on_caller_connection(
    store: Store, body: Callable[[Any], Awaitable[list[Inserted]]]
) -> list[Inserted]:
    """Open an async psycopg connection on the store's database (without its schema, as an
    application's would be) and run `body` on it; the connection is closed afterwards."""
    import psycopg

    parts = urlparse(store.url)
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "schema"])
    url = urlunparse(parts._replace(query=query))

    async def main() -> list[Inserted]:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            return await body(conn)

    return asyncio.run(main())


def _insert_then(
    store: Store, jobs: list[NewJob], commit: bool
) -> Callable[[Any], Awaitable[list[Inserted]]]:
    async def body(conn: Any) -> list[Inserted]:
        inserted = await store.job_insert_many_async(jobs, conn)
        fresh = next(i.id for i in inserted if not i.duplicate)
        assert store.job_get(fresh) is None, "visible before the caller committed"
        await (conn.commit() if commit else conn.rollback())
        return inserted

    return body


@pytest.mark.engine("sqlite")  # postgres has an async driver (the tests below)
def test_an_engine_without_an_async_driver_refuses_an_async_connection(store: Store) -> None:
    class AsyncConnection:
        async def execute(self, *args: Any) -> None:
            raise AssertionError("not to be used")

    with pytest.raises(ConfigurationError, match="cannot enqueue on an async connection"):
        asyncio.run(store.job_insert_many_async([new_job()], AsyncConnection()))
    assert store.job_list(JobFilter()) == []


@pytest.mark.engine("postgres")
def test_rolled_back_async_caller_transaction_stores_nothing(store: Store) -> None:
    inserted = _run_on_caller_connection(
        store, _insert_then(store, [new_job(), new_job(), new_job()], commit=False)
    )
    assert len({i.id for i in inserted}) == 3
    assert store.job_list(JobFilter()) == []
    assert store.job_counts() == []


@pytest.mark.engine("postgres")
def test_committed_async_caller_transaction_stores_the_jobs(store: Store) -> None:
    [inserted] = _run_on_caller_connection(
        store, _insert_then(store, [new_job(args={"n": 1})], commit=True)
    )
    assert get(store, inserted.id).args == {"n": 1}
    assert claim_one(store).id == inserted.id


@pytest.mark.engine("postgres")
def test_unique_key_is_seen_inside_the_async_caller_transaction(store: Store) -> None:
    [existing] = insert(store, new_job(unique_key="u1"))
    got = _run_on_caller_connection(
        store, _insert_then(store, [new_job(unique_key="u1"), new_job()], commit=True)
    )
    assert (got[0].id, got[0].duplicate) == (existing, True)
    assert got[1].duplicate is False
    assert len(store.job_list(JobFilter())) == 2


@pytest.mark.engine("postgres")
def test_a_large_batch_on_an_async_connection_commits_whole(store: Store) -> None:
    jobs = [new_job(args={"i": i}) for i in range(5001)]  # more than one insert statement
    got = _run_on_caller_connection(store, _insert_then(store, jobs, commit=True))
    assert len({i.id for i in got}) == 5001
    assert sum(c.count for c in store.job_counts()) == 5001
