"""Sustained churn (catalogue H3): many jobs through one store, round after round, while the
pruner deletes what finished. The store's size must level off, not grow with the jobs that
went through it, and claims must keep working.

Each round enqueues a batch, lets two worker processes run it, prunes (as the maintenance
leader's pruner does every minute, here after every round) and measures the store:
- SQLite: the file's pages (`page_count`; pruned rows' pages go to the freelist and are used
  again, so the file stops growing);
- PostgreSQL: `pg_total_relation_size` of the jobs table with its indexes. Deleted and updated
  rows' space is reused once vacuumed; the test server runs without autovacuum, so the test
  runs `VACUUM (ANALYZE)` after each round, as autovacuum would (it is on by default).

A sample of the jobs (every `sample`-th) writes the ledger; the others are `quiet` jobs whose
count the store's totals check. The sizes are reported (`record_figures`); the assertion is
that the median size of the second half of the rounds is within 1.5 times that of the first
half (a store that kept every job's space would grow about 2.7 times over ten rounds).
"""

from __future__ import annotations

import signal
import sqlite3
import statistics
import time
from collections.abc import Iterator

import psycopg
import pytest

from offload import Offload
from offload.maintenance._pruner import Pruner
from tests._engines import PG_URL
from tests.integration._harness import Procs, counts, wait_until

from ._ledger import Ledger, check, record_figures
from .churnapp import make_app

CHURN_APP = "tests.faults.churnapp:app"
TTL = {"result_ttl": 0.001}  # completed jobs may be pruned at once


@pytest.fixture
def app(store_url: str) -> Iterator[Offload]:
    """The churn app (overrides the fault app of conftest.py)."""
    application = make_app(store_url)
    application.store.migrate()
    yield application
    application.close()


def _size(app: Offload) -> int:
    """Bytes the store's jobs take: the SQLite file's pages, or the PostgreSQL jobs table
    with its indexes (after a VACUUM (ANALYZE), standing in for autovacuum)."""
    store = app.store
    if store.engine == "sqlite":
        with sqlite3.connect(store.path) as conn:  # type: ignore[attr-defined]
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            page = conn.execute("PRAGMA page_size").fetchone()[0]
        return int(pages * page)
    table = f'"{store.schema}".offload_jobs'  # type: ignore[attr-defined]
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"VACUUM (ANALYZE) {table}")
        row = conn.execute("SELECT pg_total_relation_size(%s::regclass)", [table]).fetchone()
    assert row is not None
    return int(row[0])


def _churn(
    app: Offload,
    procs: Procs,
    ledger: Ledger,
    engine: str,
    total: int,
    batch: int,
    sample: int,
) -> None:
    workers = [procs.worker(concurrency=8, name=f"churn{i}", app=CHURN_APP) for i in range(2)]
    quiet = app.call("quiet", **TTL)
    sizes: list[int] = []
    seconds: list[float] = []
    for first in range(0, total, batch):
        sampled = [f"job-{i}" for i in range(first, first + batch) if i % sample == 0]
        others = [f"job-{i}" for i in range(first, first + batch) if i % sample != 0]
        started = time.monotonic()
        assert ledger.enqueue_many(app, "work", sampled, call_options=TTL) is not None
        for at in range(0, len(others), 1000):
            app.enqueue_many(quiet.prepare(key=key) for key in others[at : at + 1000])
        wait_until(
            lambda: set(counts(app)) <= {"completed"},
            timeout=120,
            what=f"the round from job {first} to run",
            explain=lambda: f"{counts(app)}\n{procs.logs()}",
            interval=0.02,
        )
        seconds.append(time.monotonic() - started)

        def pruned() -> bool:
            """The leader's duty, here after every round. On PostgreSQL it skips rows locked
            at that moment (a worker's heartbeat may still hold a job it just finished)."""
            Pruner(every=60.0).run(app)
            return counts(app) == {}

        wait_until(pruned, timeout=30, what="the pruner to delete every finished job")
        sizes.append(_size(app))
    for worker in workers:  # drained: nothing of theirs is left to put back
        worker.signal(signal.SIGKILL)
    for worker in workers:
        worker.wait_exit()

    verdict = check(ledger, app)
    verdict.assert_holds(max_restarted=0)
    totals = {
        (t.kind, t.event): t.value for t in app.store.job_totals() if t.kind in ("work", "quiet")
    }
    ran = totals.get(("work", "completed"), 0) + totals.get(("quiet", "completed"), 0)
    enqueued = totals.get(("work", "enqueued"), 0) + totals.get(("quiet", "enqueued"), 0)
    assert enqueued == ran == total, totals
    half = len(sizes) // 2
    early, late = statistics.median(sizes[:half]), statistics.median(sizes[half:])
    print(
        f"\n[{engine}] {total} jobs in rounds of {batch}: store size after each round "
        f"{[round(s / 1024) for s in sizes]} KiB; seconds per round first/last "
        f"{seconds[0]:.2f}/{seconds[-1]:.2f}"
    )
    assert late <= 1.5 * early, f"the store kept growing: {early} bytes, then {late}"
    record_figures(
        f"H3 churn of {total} jobs",
        engine,
        verdict,
        churned=total,
        size_first_half_kib=round(early / 1024),
        size_second_half_kib=round(late / 1024),
        round_seconds_first=round(seconds[0], 2),
        round_seconds_last=round(seconds[-1], 2),
    )


@pytest.mark.slow  # a long fault run: CI time; run with -m slow
def test_churn_through_one_store_levels_off(
    app: Offload, procs: Procs, ledger: Ledger, engine: str
) -> None:
    _churn(app, procs, ledger, engine, total=10_000, batch=1_000, sample=10)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_a_million_jobs_through_one_store_level_off(
    app: Offload, procs: Procs, ledger: Ledger, engine: str
) -> None:
    _churn(app, procs, ledger, engine, total=1_000_000, batch=20_000, sample=100)
