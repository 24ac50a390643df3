"""Store executors: `store.transaction()` groups operations of every family into one transaction,
and `store.bind(conn)` runs them in a caller's own transaction.

Written once against the contract and run on every engine; a reader on another connection (the
store's own one-shot operations) must not see a transaction's work before it commits.
"""

from __future__ import annotations

import select
import sqlite3

import pytest

from offload._errors import ConfigurationError, StoreError
from offload.store import open_store
from offload.store._contract import CronTick, JobFilter, NewJob, Store
from offload.store._policy import NewRule
from offload.store._totals import JobTotal
from offload.store.sqlite._doorbell import Doorbell, supported
from tests._engines import PG_URL, need_postgres

from ._helpers import claim_one, complete, get, insert, insert_one, new_job
from .test_caller_transaction import caller_connection

# A listener that should wake is given this long; one that should not is given NO_WAKE.
WAKES_WITHIN = 10.0
NO_WAKE = 0.2


class Boom(Exception):
    pass


def _jobs(store: Store) -> list[int]:
    return sorted(r.id for r in store.job_list(JobFilter(limit=1000)))


def test_a_transaction_commits_its_operations_when_the_block_ends(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.in_transaction and not store.in_transaction
        [a, b] = insert(tx, new_job(args={"n": 1}), new_job(args={"n": 2}))
        assert get(tx, a).args == {"n": 1}  # the transaction reads its own writes
        assert store.job_get(a) is None  # nobody else sees them before the commit
    assert _jobs(store) == [a, b]
    assert get(store, b).state == "available"


def test_a_transaction_rolls_back_when_the_block_raises(store: Store) -> None:
    kept = insert_one(store)
    with pytest.raises(Boom), store.transaction() as tx:
        insert(tx, new_job(), new_job())
        assert tx.job_cancel(kept)
        raise Boom
    assert _jobs(store) == [kept]
    assert get(store, kept).state == "available"


def _every_family(tx: Store, running: int) -> int:
    """One operation of each family on `tx`; the id of the job it inserts."""
    [job] = insert(tx, new_job(kind="next", args={"after": running}))  # jobs
    job_running = claim_one(tx)  # jobs: claims the running job inserted before
    complete(tx, job_running, {"done": True})  # jobs
    tx.rule_add(NewRule("never", "args.x == 1"))  # policy
    assert tx.job_promote_due() == 0  # maintenance
    assert tx.leader_acquire("leader", "me", 60.0)  # maintenance
    tx.counter_add("test_counter", 3)  # admin
    tx.job_totals_add([JobTotal("default", "k", "failed", 2)])  # totals
    assert tx.limit_list() == []  # dispatch
    return job


def test_operations_of_every_family_commit_together(store: Store) -> None:
    running = insert_one(store)
    with store.transaction() as tx:
        job = _every_family(tx, running)
    assert get(store, running).state == "completed"
    assert get(store, running).result == {"done": True}
    assert get(store, job).state == "available"
    assert [r.where for r in store.rule_list()] == ["args.x == 1"]
    assert store.counters().get("test_counter") == 3
    assert not store.leader_acquire("leader", "another", 60.0)
    assert JobTotal("default", "k", "failed", 2) in store.job_totals()


def test_operations_of_every_family_roll_back_together(store: Store) -> None:
    running = insert_one(store)
    with pytest.raises(Boom), store.transaction() as tx:
        _every_family(tx, running)
        raise Boom
    assert _jobs(store) == [running]
    assert get(store, running).state == "available"
    assert store.rule_list() == []
    assert "test_counter" not in store.counters()
    assert store.leader_acquire("leader", "another", 60.0)
    assert all(t.event != "failed" for t in store.job_totals())


def test_a_cron_tick_fired_in_a_transaction_rolls_back_with_it(store: Store) -> None:
    tick = CronTick("nightly", 1000.0, new_job(kind="report"))
    with pytest.raises(Boom), store.transaction() as tx:
        assert tx.cron_fire(tick)
        raise Boom
    assert store.cron_last_tick("nightly") is None
    assert _jobs(store) == []
    assert store.cron_fire(tick)
    assert not store.cron_fire(tick)
    assert [r.kind for r in store.job_list(JobFilter())] == ["report"]


def test_a_nested_transaction_joins_the_open_one(store: Store) -> None:
    with pytest.raises(Boom), store.transaction() as tx:
        with tx.transaction() as inner:
            assert inner is tx
            insert_one(inner)
        assert store.bind(tx) is tx  # binding an open transaction joins it too
        assert len(_jobs(tx)) == 1  # the inner block did not commit on its own
        raise Boom
    assert _jobs(store) == []


def test_bind_runs_operations_in_the_callers_transaction(store: Store) -> None:
    running = insert_one(store)
    with caller_connection(store) as conn:
        tx = store.bind(conn)
        assert tx.in_transaction
        [job] = insert(tx, new_job(unique_key="u1"))
        complete(tx, claim_one(tx), "ok")
        tx.counter_add("test_counter", 1)
        conn.rollback()
    assert _jobs(store) == [running]
    assert get(store, running).state == "available"
    assert "test_counter" not in store.counters()

    with caller_connection(store) as conn:
        tx = store.bind(conn)
        [job] = insert(tx, new_job(unique_key="u1"))
        complete(tx, claim_one(tx), "ok")
        assert store.job_get(job) is None  # the caller has not committed
        conn.commit()
    assert get(store, running).result == "ok"
    assert get(store, job).state == "available"


def test_insert_on_a_callers_connection_still_takes_conn(store: Store) -> None:
    with caller_connection(store) as conn:
        [inserted] = store.job_insert_many([new_job()], conn=conn)
        conn.commit()
    assert get(store, inserted.id).state == "available"


def test_bind_refuses_a_store_that_is_not_a_transaction(store: Store) -> None:
    with pytest.raises(ConfigurationError, match="not a transaction"):
        store.bind(store)


def test_bind_refuses_a_transaction_of_another_store(store: Store, sqlite_url: str) -> None:
    other = open_store(sqlite_url.replace("offload.db", "other.db"))
    other.migrate()
    try:
        with other.transaction() as tx, pytest.raises(ConfigurationError, match="other.db"):
            store.job_insert_many([new_job()], conn=tx)
    finally:
        other.close()
    assert _jobs(store) == []


def test_bind_refuses_a_connection_of_another_driver(store: Store) -> None:
    if store.engine == "sqlite":
        need_postgres()
        import psycopg

        conn: object = psycopg.connect(PG_URL)
    else:
        conn = sqlite3.connect(":memory:")
    try:
        with pytest.raises(ConfigurationError) as refused:
            store.bind(conn)
        message = str(refused.value)
        assert "sqlite" in message and ("postgres" in message or "psycopg" in message)
    finally:
        conn.close()  # type: ignore[attr-defined]


def test_idle_workers_are_woken_once_the_transaction_commits(store: Store) -> None:
    listener = store.listener(["default"])
    try:
        with store.transaction() as tx:
            insert_one(tx)
            assert not listener.wait(NO_WAKE)  # nothing to see before the commit
        assert listener.wait(WAKES_WITHIN)
    finally:
        listener.close()
    assert claim_one(store).attempt == 1


# --- SQLite ----------------------------------------------------------------------------
@pytest.mark.engine("sqlite")
@pytest.mark.skipif(not supported(), reason="the doorbell uses Linux sockets")
def test_sqlite_rings_the_doorbell_after_the_commit_not_before(store: Store) -> None:
    bell = Doorbell(store.url.removeprefix("sqlite:///")).bell()
    assert bell is not None
    try:
        with store.transaction() as tx:
            insert_one(tx)
            assert not select.select([bell], [], [], 0)[0]
        assert select.select([bell], [], [], WAKES_WITHIN)[0]
    finally:
        bell.close()


@pytest.mark.engine("sqlite")
def test_sqlite_store_operations_go_on_beside_an_open_transaction(store: Store) -> None:
    with store.transaction() as tx:
        insert_one(tx)
        # Reads of the store's own connections are not held up by the open transaction.
        assert store.job_list(JobFilter()) == []
        assert store.counters() == {}
    assert len(_jobs(store)) == 1


@pytest.mark.engine("sqlite")
def test_sqlite_transaction_that_ended_refuses_more_work(store: Store) -> None:
    with store.transaction() as tx:
        insert_one(tx)
    with pytest.raises(StoreError, match="has ended"):
        tx.job_insert_many([NewJob("k", "default", {})])
    assert len(_jobs(store)) == 1


@pytest.mark.engine("sqlite")
def test_sqlite_bind_takes_a_sqlalchemy_session(store: Store) -> None:
    import sqlalchemy  # the test extra installs it
    from sqlalchemy.orm import Session

    engine = sqlalchemy.create_engine(f"sqlite:///{store.url.removeprefix('sqlite:///')}")
    try:
        with Session(engine) as session:
            [inserted] = store.job_insert_many([new_job()], conn=session)
            session.rollback()
        assert store.job_get(inserted.id) is None
        with Session(engine) as session:
            [inserted] = store.bind(session).job_insert_many([new_job()])
            session.commit()
        assert get(store, inserted.id).state == "available"
    finally:
        engine.dispose()
