"""The claim statements stay index range scans: on SQLite whatever the backlog, on PostgreSQL
even before the table is first analyzed (bench/README.md, profile findings 1 and 2)."""

from __future__ import annotations

import json
import sqlite3

import psycopg
import pytest

from offload.store._contract import NewJob, Store


def _fill(store: Store, n: int) -> None:
    for start in range(0, n, 1000):
        store.job_insert_many(
            [NewJob(kind="k", queue="default", args={"i": i}) for i in range(start, start + 1000)]
        )


@pytest.mark.engine("sqlite")
def test_sqlite_claim_update_goes_by_rowid(store: Store) -> None:
    _fill(store, 2000)
    with sqlite3.connect(store.path) as conn:  # type: ignore[attr-defined]
        plan = conn.execute(
            "EXPLAIN QUERY PLAN " + store._q["job_claim_update"],  # type: ignore[attr-defined]
            ("w", 1, 0.0, 0.0, json.dumps([1, 2, 3]), json.dumps([1]), 0),
        ).fetchall()
    text = "\n".join(str(row[-1]) for row in plan)
    assert "offload_jobs_state_kind" not in text, text
    assert "INTEGER PRIMARY KEY" in text, text


@pytest.mark.engine("postgres")
def test_postgres_claim_uses_the_claim_index_before_analyze(store: Store) -> None:
    _fill(store, 1000)
    q = store._q["job_claim"]  # type: ignore[attr-defined]
    args = {
        "queues": ["default"],
        "limit": 32,
        "worker_id": "w",
        "token": 1,
        "lease_seconds": 60.0,
        "start": 4,
        "everything": False,
    }
    with psycopg.connect(store.conninfo, autocommit=True) as conn:  # type: ignore[attr-defined]
        never = conn.execute(
            "SELECT last_analyze IS NULL AND last_autoanalyze IS NULL FROM pg_stat_user_tables "
            "WHERE relid = %s::regclass",
            (f"{store.schema}.offload_jobs",),  # type: ignore[attr-defined]
        ).fetchone()
        with conn.transaction(force_rollback=True):
            plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + q, args))
    assert never == (True,)
    assert "Index Scan using offload_jobs_claim on offload_jobs " in plan, plan
    assert "Sort Key: offload_jobs.priority" not in plan, plan
    assert "offload_jobs_queue_state" not in plan, plan


@pytest.mark.engine("sqlite")
def test_sqlite_batched_acks_go_by_rowid(store: Store) -> None:
    _fill(store, 2000)
    with sqlite3.connect(store.path) as conn:  # type: ignore[attr-defined]
        for name in ("job_complete", "job_fail", "job_heartbeat", "job_start"):
            sql = store._q[name]  # type: ignore[attr-defined]
            params = ("[]",) if name == "job_start" else (0.0, "[]")
            plan = conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
            text = "\n".join(str(row[-1]) for row in plan)
            assert "SCAN json_each" in text and "INTEGER PRIMARY KEY" in text, (name, text)
            assert "SCAN offload_jobs" not in text and "state_kind" not in text, (name, text)


# Queries that SQLite, without statistics, planned through the index on `state` (a scan of
# every job in that state: over a second per round at 5,000,000 queued jobs), each with the
# partial index it must use.
SQLITE_PLANS = [
    ("policy", "job_shed_expired", "offload_jobs_expires"),
    ("queries", "job_next_due", "offload_jobs_due"),
    ("queries", "job_rescue_select", "offload_jobs_lease"),
    ("queries", "job_prune_completed", "offload_jobs_finished"),
    ("queries", "job_prune_final", "offload_jobs_finished"),
    ("queries", "job_finished_since", "offload_jobs_finished"),
    ("queries", "job_finished_since", "offload_jobs_due"),
    ("queries", "count_batch_add", "INTEGER PRIMARY KEY"),
    ("dispatch", "limit_running", "offload_jobs_limit"),
    ("dispatch", "limit_head", "offload_jobs_limit"),
    ("dispatch", "limit_list", "offload_jobs_limit"),
    ("dispatch", "limit_prune", "offload_jobs_limit"),
]


def test_sqlite_maintenance_and_limit_queries_use_their_partial_indexes(sqlite_url: str) -> None:
    import re

    from offload.store import open_store
    from offload.store._sql import queries

    store = open_store(sqlite_url)
    try:
        store.migrate()
        _fill(store, 2000)
        path = store.path  # type: ignore[attr-defined]
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        for file, name, index in SQLITE_PLANS:
            sql = queries("sqlite", file)[name]
            named = re.findall(r":(\w+)", sql)
            params: dict[str, None] | list[None] = (
                dict.fromkeys(named) if named else [None] * sql.count("?")
            )
            plan = "\n".join(str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
            assert index in plan, (name, plan)
            # limit_prune also looks for scheduled jobs of a key, which only that index holds.
            allowed = 1 if name == "limit_prune" else 0
            assert plan.count("offload_jobs_state_kind") == allowed, (name, plan)
