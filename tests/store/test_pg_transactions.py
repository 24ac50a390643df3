"""Store transactions on PostgreSQL: `transaction()` on a pooled connection and `bind()` on a
caller's own. Operations of every family run in one transaction and commit or roll back
together; wake-ups are delivered at the commit; a lost connection keeps nothing of the block.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

import psycopg
import pytest

from offload._errors import ConfigurationError, StoreError, StoreUnavailableError
from offload.dispatch._limits import LimitSpec
from offload.store import open_store
from offload.store._contract import (
    ClaimParams,
    Completion,
    CronTick,
    JobFilter,
    Store,
)
from offload.store._policy import NewRule
from offload.store._totals import JobTotal
from tests._engines import drop_schema, make_url

from ._helpers import get, insert_one, new_job

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


def _caller(store: Store, autocommit: bool = False) -> Any:
    """An application's own psycopg connection to the store's database (no schema option)."""
    parts = urlparse(store.url)
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "schema"])
    return psycopg.connect(urlunparse(parts._replace(query=query)), autocommit=autocommit)


def _work(tx: Store) -> dict[str, Any]:
    """Something of every family, on one executor: jobs, dispatch (a limited job's claim),
    policy, maintenance, admin and totals."""
    plain = tx.job_insert_many([new_job(queue="a"), new_job(queue="a")])
    tx.job_insert_many([new_job(queue="a", unique_key="u")])  # several statements
    taken = tx.job_claim(ClaimParams(["a"], 1, "w", 60.0))
    acked = tx.job_ack_claim([Completion(taken[0].id, taken[0].lease_token, 7)], [], None)
    assert acked.completed.applied == 1
    assert tx.job_cancel(plain[1].id)
    rule = tx.rule_add(NewRule(kind="never", where="tenant == 'x'"))
    tx.job_totals_add([JobTotal("a", "k", "failed", 3)])
    tx.counter_add("tx_test", 5)
    assert tx.leader_acquire("tx_test", "me", 60.0)
    assert tx.cron_fire(CronTick("tx_cron", 1000.0, new_job(queue="cron")))
    [fired] = tx.job_claim(ClaimParams(["cron"], 5, "w", 60.0))
    key = LimitSpec(concurrency=1)
    tx.job_insert_many([new_job(queue="lim", limit_key="key", limit=key) for _ in range(2)])
    [limited] = tx.job_claim(ClaimParams(["lim"], 5, "w", 60.0))  # through the limit: one
    return {
        "done": taken[0].id,
        "cancelled": plain[1].id,
        "rule": rule.id,
        "cron": fired.id,
        "limited": limited.id,
    }


def _seen(store: Store, ids: dict[str, Any]) -> dict[str, Any]:
    """What of `_work` the store shows from outside the transaction."""
    done, cancelled = store.job_get(ids["done"]), store.job_get(ids["cancelled"])
    return {
        "done": None if done is None else (done.state, done.result),
        "cancelled": None if cancelled is None else cancelled.state,
        "rules": [r.id for r in store.rule_list()],
        "failed": sum(t.value for t in store.job_totals() if t.event == "failed"),
        "counter": store.counters().get("tx_test"),
        "cron": store.cron_last_tick("tx_cron"),
        "jobs": len(store.job_list(JobFilter())),
        "running": sorted(j.id for j in store.job_list(JobFilter(states=["running"]))),
        "keys": [(k.key, k.running) for k in store.limit_list()],
    }


NOTHING = {
    "done": None,
    "cancelled": None,
    "rules": [],
    "failed": 0,
    "counter": None,
    "cron": None,
    "jobs": 0,
    "running": [],
    "keys": [],
}


def test_a_transaction_commits_every_family_together(pg: Store) -> None:
    with pg.transaction() as tx:
        assert tx.in_transaction and not pg.in_transaction
        ids = _work(tx)
        assert _seen(pg, ids) == NOTHING  # not visible before the commit
    seen = _seen(pg, ids)
    assert seen == {
        "done": ("completed", 7),
        "cancelled": "cancelled",
        "rules": [ids["rule"]],
        "failed": 3,
        "counter": 5,
        "cron": 1000.0,
        "jobs": 6,
        "running": sorted([ids["cron"], ids["limited"]]),
        "keys": [("key", 1)],
    }


def test_a_transaction_that_raises_keeps_nothing(pg: Store) -> None:
    ids: dict[str, Any] = {}
    with pytest.raises(RuntimeError, match="changed my mind"), pg.transaction() as tx:
        ids.update(_work(tx))
        raise RuntimeError("changed my mind")
    assert _seen(pg, ids) == NOTHING
    assert pg.leader_acquire("tx_test", "someone else", 60.0)  # the leadership went too


def test_a_nested_transaction_joins_and_an_ended_one_refuses_work(pg: Store) -> None:
    with pg.transaction() as tx:
        with tx.transaction() as inner:
            assert inner is tx
            job_id = insert_one(inner)
        assert pg.job_get(job_id) is None  # the inner block did not commit
        assert pg.bind(tx) is tx  # binding the open transaction joins it too
    assert get(pg, job_id).state == "available"
    with pytest.raises(StoreError, match="ended"):
        tx.job_get(job_id)


def test_a_failed_statement_rolls_the_whole_transaction_back(pg: Store) -> None:
    with pytest.raises(StoreError, match="rolled back"), pg.transaction() as tx:
        job_id = insert_one(tx)
        with pytest.raises(psycopg.Error):  # swallowed: the transaction is aborted
            tx.job_insert_many([new_job(args={"bad": 1}, args_json='{"bad": 1')])
    assert pg.job_get(job_id) is None


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
def test_bind_runs_in_the_callers_transaction(pg: Store, outcome: str) -> None:
    with _caller(pg) as conn:
        ex = pg.bind(conn)
        assert ex.in_transaction
        ids = _work(ex)
        # Operations that need several statements (a unique insert, the pipelined cycle,
        # cron_fire) did not commit the caller's transaction.
        assert _seen(pg, ids) == NOTHING
        assert conn.execute("SHOW synchronous_commit").fetchone()[0] == "on"
        ex.job_ack_claim([], [], ClaimParams(["nothing"], 1, "w", 60.0), durable=False)
        assert conn.execute("SHOW synchronous_commit").fetchone()[0] == "on"
        if outcome == "commit":
            conn.commit()
        else:
            conn.rollback()
    seen = _seen(pg, ids)
    if outcome == "rollback":
        assert seen == NOTHING
    else:
        assert seen["done"] == ("completed", 7) and seen["counter"] == 5


def test_bind_on_an_autocommit_connection_commits_each_operation(pg: Store) -> None:
    with _caller(pg, autocommit=True) as conn:
        [inserted] = pg.bind(conn).job_insert_many([new_job(unique_key="one")])
        assert get(pg, inserted.id).state == "available"
        with pytest.raises(RuntimeError), pg.bind(conn).transaction() as tx:
            insert_one(tx)
            raise RuntimeError
    assert len(pg.job_list(JobFilter())) == 1


def test_bind_refuses_another_driver_naming_both(pg: Store, tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "app.db") as other:
        with pytest.raises(ConfigurationError, match=r"PostgreSQL store.*SQLite.*sqlite3"):
            pg.bind(other)
    with pytest.raises(ConfigurationError, match="not a transaction"):
        pg.bind(pg)


def test_a_wake_up_is_delivered_only_at_the_commit(pg: Store) -> None:
    listener = pg.listener(["woken"])
    try:
        with pg.transaction() as tx:
            insert_one(tx, queue="woken")
            assert not listener.wait(0.3)  # nothing to claim yet: no wake-up
        assert listener.wait(30.0)
    finally:
        listener.close()


def test_a_connection_lost_inside_a_transaction_keeps_nothing(pg: Store) -> None:
    schema = pg.schema  # type: ignore[attr-defined]
    with pytest.raises(StoreUnavailableError, match="nothing of"), pg.transaction() as tx:
        job_id = insert_one(tx)
        tx.counter_add("lost", 1)
        with _caller(pg, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
                "WHERE state = 'idle in transaction' AND position(%s in query) > 0",
                (f'"{schema}"',),
            ).fetchall()
        assert killed == [(True,)]
        insert_one(tx)
    assert pg.job_get(job_id) is None
    assert "lost" not in pg.counters()
    assert insert_one(pg) > 0  # the store carries on with a new connection


def test_bind_takes_a_sqlalchemy_session_on_psycopg(pg: Store) -> None:
    import sqlalchemy  # the test extra installs it
    from sqlalchemy.orm import Session

    parts = urlparse(pg.url)
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "schema"])
    url = urlunparse(parts._replace(scheme="postgresql+psycopg", query=query))
    engine = sqlalchemy.create_engine(url)
    try:
        with Session(engine) as session:
            [dropped] = pg.bind(session).job_insert_many([new_job(unique_key="s")])
            session.rollback()
        with Session(engine) as session:
            tx = pg.bind(session)
            [kept] = tx.job_insert_many([new_job(unique_key="s")])
            assert pg.job_get(kept.id) is None
            session.commit()
    finally:
        engine.dispose()
    assert pg.job_get(dropped.id) is None
    assert get(pg, kept.id).state == "available"
