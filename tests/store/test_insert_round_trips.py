"""Round trips of an insert on PostgreSQL, read from libpq's protocol trace: a plain enqueue
is one statement that commits by itself (no BEGIN or COMMIT of its own), on the pool and on a
caller's async connection in autocommit; an insert of several statements keeps its
transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

import psycopg
import pytest
from psycopg import pq

from offload.store import open_store
from offload.store._contract import NewJob, Store
from offload.store.postgres._pool import Pool
from tests._engines import drop_schema, make_url

from ._helpers import get, new_job

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[Any]:
    """A migrated PostgreSQL store in a schema of its own."""
    url, schema = make_url("postgres", tmp_path)
    store = open_store(url)
    store.migrate()
    yield store
    store.close()
    if schema:
        drop_schema(schema)


class Trace:
    """libpq's protocol trace of some connections, written to a file."""

    def __init__(self, path: Path) -> None:
        self.file = path.open("w+")
        self.traced: list[Any] = []

    def start(self, pgconn: Any) -> None:
        pgconn.trace(self.file.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        self.traced.append(pgconn)

    def stop(self) -> list[str]:
        """The messages sent and received since `start`; the tracing ends."""
        for pgconn in self.traced:
            pgconn.untrace()
        self.file.seek(0)
        lines = self.file.read().splitlines()
        self.file.close()
        return lines


def round_trips(lines: list[str]) -> int:
    """Exchanges with the server: each ends with the server's ReadyForQuery."""
    return sum(1 for line in lines if line.startswith("B\t") and "\tReadyForQuery" in line)


def commands(lines: list[str]) -> list[str]:
    """The simple-protocol commands sent (BEGIN, COMMIT, SAVEPOINT...)."""
    return [line.split("\t")[3].strip().strip('"') for line in lines if "\tQuery\t" in line]


def pooled(
    pg: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: Callable[[], Any]
) -> list[str]:
    """The trace of `body` on the store's pooled connections."""
    trace = Trace(tmp_path / "trace.txt")
    take = Pool._take

    def traced(pool: Pool) -> Any:
        conn = take(pool)
        trace.start(conn.pgconn)
        return conn

    monkeypatch.setattr(Pool, "_take", traced)
    try:
        body()
    finally:
        monkeypatch.setattr(Pool, "_take", take)
        lines = trace.stop()
    return lines


def test_a_plain_enqueue_on_the_pool_is_one_round_trip(
    pg: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(6):  # past psycopg's prepare threshold: the statement is prepared
        pg.job_insert_many([new_job()])
    inserted: list[Any] = []
    lines = pooled(
        pg, tmp_path, monkeypatch, lambda: inserted.extend(pg.job_insert_many([new_job()]))
    )
    assert round_trips(lines) == 1
    assert commands(lines) == []
    assert get(pg, inserted[0].id).state == "available"


def test_an_insert_of_several_statements_on_the_pool_keeps_its_transaction(
    pg: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = [new_job(unique_key="u"), new_job(unique_key="u")]
    lines = pooled(pg, tmp_path, monkeypatch, lambda: pg.job_insert_many(jobs))
    assert commands(lines)[0] == "BEGIN" and commands(lines)[-1] == "COMMIT"


def _caller_url(store: Store) -> str:
    parts = urlparse(store.url)
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "schema"])
    return urlunparse(parts._replace(query=query))


def _async_autocommit(store: Store, tmp_path: Path, jobs: list[NewJob], block: bool) -> list[str]:
    """The trace of an async insert on a caller's connection in autocommit (inside a
    transaction block of the caller's when `block`); the ids are checked stored after."""

    async def main() -> list[str]:
        async with await psycopg.AsyncConnection.connect(
            _caller_url(store), autocommit=True
        ) as conn:
            trace = Trace(tmp_path / "trace.txt")
            trace.start(conn.pgconn)
            if block:
                async with conn.transaction():
                    inserted = await store.job_insert_many_async(jobs, conn)
            else:
                inserted = await store.job_insert_many_async(jobs, conn)
            lines = trace.stop()
        for i in inserted:
            assert get(store, i.id).state == "available"
        return lines

    return asyncio.run(main())


def test_a_plain_enqueue_on_an_async_autocommit_connection_commits_by_itself(
    pg: Store, tmp_path: Path
) -> None:
    lines = _async_autocommit(pg, tmp_path, [new_job()], block=False)
    assert round_trips(lines) == 1
    assert commands(lines) == []


def test_several_statements_on_an_async_autocommit_connection_take_a_transaction(
    pg: Store, tmp_path: Path
) -> None:
    lines = _async_autocommit(pg, tmp_path, [new_job(unique_key="a")], block=False)
    assert commands(lines)[0] == "BEGIN" and commands(lines)[-1] == "COMMIT"


def test_an_async_enqueue_in_the_callers_block_takes_a_savepoint_as_before(
    pg: Store, tmp_path: Path
) -> None:
    lines = _async_autocommit(pg, tmp_path, [new_job()], block=True)
    assert any(c.startswith("SAVEPOINT") for c in commands(lines))


def _sync_autocommit(store: Store, tmp_path: Path, jobs: list[NewJob]) -> list[str]:
    """The trace of a sync insert on a caller's connection in autocommit; the ids are checked
    stored after."""
    with psycopg.connect(_caller_url(store), autocommit=True) as conn:
        trace = Trace(tmp_path / "trace.txt")
        trace.start(conn.pgconn)
        inserted = store.job_insert_many(jobs, conn)
        lines = trace.stop()
    for i in inserted:
        assert get(store, i.id).state == "available"
    return lines


def test_a_plain_enqueue_on_a_sync_autocommit_connection_commits_by_itself(
    pg: Store, tmp_path: Path
) -> None:
    lines = _sync_autocommit(pg, tmp_path, [new_job()])
    assert round_trips(lines) == 1
    assert commands(lines) == []


def test_several_statements_on_a_sync_autocommit_connection_take_a_transaction(
    pg: Store, tmp_path: Path
) -> None:
    lines = _sync_autocommit(pg, tmp_path, [new_job(unique_key="a")])
    assert commands(lines)[0] == "BEGIN" and commands(lines)[-1] == "COMMIT"
