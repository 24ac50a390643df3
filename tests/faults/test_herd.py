"""A thundering herd (catalogue H5): thousands of jobs scheduled for one instant, many worker
processes waiting for them.

At that instant the maintenance leader makes them all available in one statement and every
worker wakes at once and claims. Nothing may run twice or be left behind; the claim rate is
measured and reported (`record_figures`), not asserted: speed belongs in bench/.
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from offload import Offload
from offload.store import open_store
from offload.store._contract import NewJob
from tests._engines import drop_schema, make_url
from tests.integration._harness import Procs, count_in, counts, wait_until

from ._ledger import Ledger, check, record_figures
from .conftest import APP


def _herd(
    app: Offload, procs: Procs, ledger: Ledger, engine: str, jobs: int, workers: int, lead: float
) -> None:
    """`lead`: seconds from the start of the enqueue to the instant every job becomes due,
    enough for the whole enqueue on a busy machine."""
    started = [procs.worker(concurrency=4, name=f"herd{i}", app=APP) for i in range(workers)]
    for worker in started:
        worker.wait_log("running queues", timeout=60)

    store_now, mono_now = app.store.now(), time.monotonic()
    due = store_now + lead
    keys = [f"herd-{i}" for i in range(jobs)]
    for first in range(0, jobs, 1000):
        ids = ledger.enqueue_many(
            app,
            "work",
            keys[first : first + 1000],
            call_options={"at": datetime.fromtimestamp(due, UTC)},
        )
        assert ids is not None
    assert count_in(app, "scheduled") == jobs, "the enqueue took longer than the lead"

    wait_until(
        lambda: count_in(app, "completed") == jobs,
        timeout=120,
        what=f"{jobs} jobs to complete",
        explain=lambda: f"{counts(app)}\n{procs.logs()}",
    )
    for worker in started:  # drained: nothing of theirs is left to put back
        worker.signal(signal.SIGKILL)
    for worker in started:
        worker.wait_exit()

    verdict = check(ledger, app)
    verdict.assert_holds(max_restarted=0)
    starts = sorted(x.mono_ns / 1e9 for x in ledger.lines() if x.event == "start")
    ends = sorted(x.mono_ns / 1e9 for x in ledger.lines() if x.event == "end")
    due_mono = mono_now + lead
    assert starts[0] >= due_mono - 0.05, f"a job started {due_mono - starts[0]:.2f}s early"
    spread = max(ends[-1] - starts[0], 1e-6)
    by_pid = Counter(x.pid for x in ledger.lines() if x.event == "start")
    rate = jobs / spread
    print(
        f"\n[{engine}] {jobs} jobs due at once, {workers} worker processes: first start "
        f"{(starts[0] - due_mono) * 1000:.0f} ms after the instant, all done in {spread:.2f}s "
        f"({rate:.0f} jobs/s); jobs per process {sorted(by_pid.values(), reverse=True)}"
    )
    record_figures(
        f"H5 herd of {jobs} due at once, {workers} processes",
        engine,
        verdict,
        claim_rate=round(rate),
        first_start_ms=round((starts[0] - due_mono) * 1000),
        workers=workers,
    )


@pytest.mark.slow  # a long fault run: CI time; run with -m slow
def test_jobs_due_at_one_instant_run_once_each_on_every_worker(
    app: Offload, procs: Procs, ledger: Ledger, engine: str
) -> None:
    _herd(app, procs, ledger, engine, jobs=1000, workers=3, lead=2.0)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ten_thousand_jobs_due_at_one_instant_with_eight_workers(
    app: Offload, procs: Procs, ledger: Ledger, engine: str
) -> None:
    _herd(app, procs, ledger, engine, jobs=10_000, workers=8, lead=15.0)


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    url, schema = make_url("postgres", tmp_path)
    yield url
    assert schema is not None
    drop_schema(schema)


def test_promoting_a_herd_on_postgres_orders_it_once(postgres_url: str) -> None:
    """The leader makes due jobs available in one statement that gives scheduled jobs their
    fair-queuing tags with a window over them. That window must run once per statement: run
    once per job, 10,000 jobs due at one instant took 80 s to promote instead of 0.4 s."""
    store = open_store(postgres_url)
    try:
        store.migrate()
        due = store.now() + 0.2
        for first in range(0, 1000, 500):
            store.job_insert_many(
                [
                    NewJob(kind="work", queue="default", args={"key": f"k{i}"}, scheduled_at=due)
                    for i in range(first, first + 500)
                ]
            )
        wait_until(lambda: store.now() > due, what="the jobs to be due")
        query = store._q["job_promote_due"]  # type: ignore[attr-defined]
        with psycopg.connect(store.conninfo) as conn:  # type: ignore[attr-defined]
            with conn.transaction(force_rollback=True):
                [(plan,)] = conn.execute(
                    "EXPLAIN (ANALYZE, FORMAT JSON) " + query, {"channel": "herd"}
                ).fetchall()
    finally:
        store.close()
    windows = [n for n in _nodes(plan[0]["Plan"]) if n["Node Type"] == "WindowAgg"]
    assert windows, plan
    assert [n["Actual Loops"] for n in windows] == [1] * len(windows), json.dumps(plan)[:3000]
    updates = [n for n in _nodes(plan[0]["Plan"]) if n.get("Operation") == "Update"]
    assert [n["Actual Rows"] for n in updates] == [1000], json.dumps(updates)[:3000]
