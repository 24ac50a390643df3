"""job_insert_many on the caller's own connection: the jobs share the caller's transaction.

Each engine gets a caller connection of its own driver on the same database. A PostgreSQL
test store lives in its own schema (`?schema=NAME` in the URL); the caller connection is opened
without it, as an application's would be, so the engine must qualify its tables or set the
search path itself.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

from offload.store._contract import JobFilter, Store

from ._helpers import claim_one, get, insert, new_job


@contextmanager
def caller_connection(store: Store) -> Iterator[Any]:
    """A connection of the application's own, with a transaction open on it."""
    if store.engine == "sqlite":
        path = urlparse(store.url).path[1:] if store.url.startswith("sqlite:") else store.url
        conn: Any = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN")
    elif store.engine == "postgres":
        import psycopg

        parts = urlparse(store.url)
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "schema"])
        conn = psycopg.connect(urlunparse(parts._replace(query=query)))  # opens a transaction
    else:  # pragma: no cover - a new engine adds its caller connection here
        raise AssertionError(f"no caller connection for engine {store.engine!r}")
    try:
        yield conn
    finally:
        conn.close()


def test_rolled_back_caller_transaction_stores_nothing(store: Store) -> None:
    with caller_connection(store) as conn:
        inserted = store.job_insert_many([new_job(), new_job(), new_job()], conn=conn)
        assert len({i.id for i in inserted}) == 3
        conn.rollback()

    assert store.job_list(JobFilter()) == []
    assert store.job_counts() == []
    assert [store.job_get(i.id) for i in inserted] == [None, None, None]


def test_committed_caller_transaction_stores_the_jobs(store: Store) -> None:
    with caller_connection(store) as conn:
        [inserted] = store.job_insert_many([new_job(args={"n": 1})], conn=conn)
        assert store.job_get(inserted.id) is None  # not visible before the caller commits
        conn.commit()

    assert get(store, inserted.id).args == {"n": 1}
    assert claim_one(store).id == inserted.id


def test_unique_key_is_seen_inside_the_caller_transaction(store: Store) -> None:
    [existing] = insert(store, new_job(unique_key="u1"))
    with caller_connection(store) as conn:
        got = store.job_insert_many([new_job(unique_key="u1"), new_job()], conn=conn)
        conn.commit()

    assert [(g.id, g.duplicate) for g in got[:1]] == [(existing, True)]
    assert got[1].duplicate is False
    assert len(store.job_list(JobFilter())) == 2


def test_jobs_rolled_back_leave_the_store_usable(store: Store) -> None:
    with caller_connection(store) as conn:
        store.job_insert_many([new_job(unique_key="u1")], conn=conn)
        conn.rollback()

    [again] = store.job_insert_many([new_job(unique_key="u1")])
    assert again.duplicate is False
    assert claim_one(store).id == again.id
