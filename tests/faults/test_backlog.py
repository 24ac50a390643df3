"""A big backlog (catalogue H1): jobs bulk-enqueued far faster than they run, then drained
by four worker processes. The backlog is never loaded into a worker's memory (each stays
under `RSS_LIMIT`), claims keep to their index at full depth, and every job runs once (the
ledger on a sample of one job in `sample`, the store's totals for all). Enqueue and drain
rates and the claim's latency at full depth are reported (`record_figures`), not asserted:
speed belongs in bench/, which also measures claims under a 5M-job backlog.
"""

from __future__ import annotations

import signal
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from offload import Offload
from offload.store._contract import ClaimParams, Lease
from tests.integration._harness import Procs, counts, wait_until

from ._ledger import Ledger, check, record_figures
from .churnapp import make_app

CHURN_APP = "tests.faults.churnapp:app"
RSS_LIMIT = 200 * 1024 * 1024


@pytest.fixture
def app(store_url: str) -> Iterator[Offload]:
    """The churn app (overrides the fault app of conftest.py)."""
    application = make_app(store_url)
    application.store.migrate()
    yield application
    application.close()


def _rss(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _claim_ms(app: Offload, probes: int = 20) -> float:
    """Median milliseconds of a claim of 10 jobs at the current depth (the jobs go back)."""
    took = []
    for _ in range(probes):
        started = time.perf_counter()
        jobs = app.store.job_claim(ClaimParams(["default"], 10, "probe", 30.0))
        took.append(time.perf_counter() - started)
        app.store.job_release_many([Lease(j.id, j.lease_token) for j in jobs])
    return statistics.median(took) * 1000


def _backlog(
    app: Offload, procs: Procs, ledger: Ledger, engine: str, total: int, sample: int
) -> None:
    quiet = app.call("quiet")
    started = time.monotonic()
    for first in range(0, total, 10_000):
        keys = [f"job-{i}" for i in range(first, min(first + 10_000, total))]
        assert ledger.enqueue_many(app, "work", keys[::sample]) is not None
        others = [k for n, k in enumerate(keys) if n % sample]
        app.enqueue_many(quiet.prepare(key=k) for k in others)
    enqueue_rate = total / (time.monotonic() - started)
    claim_ms = _claim_ms(app)

    workers = [procs.worker(concurrency=10, name=f"drain{i}", app=CHURN_APP) for i in range(4)]
    peak = {w.pid: 0 for w in workers}
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.2):
            for pid in peak:
                peak[pid] = max(peak[pid], _rss(pid))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    drain_started = time.monotonic()
    try:
        wait_until(
            lambda: set(counts(app)) <= {"completed"},
            timeout=max(120.0, total / 500),
            what=f"the backlog of {total} to drain",
            explain=lambda: f"{counts(app)}\n{procs.logs()}",
            interval=0.5,
        )
    finally:
        done.set()
        watcher.join()
    drain_rate = total / (time.monotonic() - drain_started)
    for worker in workers:  # drained: nothing of theirs is left to put back
        worker.signal(signal.SIGKILL)
    for worker in workers:
        worker.wait_exit()

    verdict = check(ledger, app)
    verdict.assert_holds(max_restarted=0)
    totals = {(t.kind, t.event): t.value for t in app.store.job_totals()}
    ran = totals.get(("work", "completed"), 0) + totals.get(("quiet", "completed"), 0)
    assert ran == total, totals
    biggest = max(peak.values())
    assert 0 < biggest < RSS_LIMIT, f"a worker took {biggest / 2**20:.0f} MiB"
    print(
        f"\n[{engine}] backlog of {total}: enqueued at {enqueue_rate:.0f} jobs/s, claim of 10 "
        f"at full depth {claim_ms:.2f} ms, drained at {drain_rate:.0f} jobs/s by 4 workers, "
        f"peak worker memory {biggest / 2**20:.0f} MiB"
    )
    record_figures(
        f"H1 backlog of {total}",
        engine,
        verdict,
        backlog=total,
        enqueue_rate=round(enqueue_rate),
        claim_ms=round(claim_ms, 2),
        drain_rate=round(drain_rate),
        peak_rss_mib=round(biggest / 2**20),
    )


def test_a_backlog_drains_without_loading_it_into_memory(
    app: Offload, procs: Procs, ledger: Ledger, engine: str
) -> None:
    _backlog(app, procs, ledger, engine, total=6_000, sample=10)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_a_million_job_backlog_drains_without_loading_it_into_memory(
    app: Offload, procs: Procs, ledger: Ledger, engine: str
) -> None:
    _backlog(app, procs, ledger, engine, total=1_000_000, sample=100)
