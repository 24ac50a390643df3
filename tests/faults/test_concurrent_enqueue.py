"""Catalogue C1: several processes enqueue at once while workers drain the store.

Every enqueue either returns (acknowledged: stored once, run once) or raises a typed refusal
(`StoreBusyError`: nothing stored); a raw driver error such as SQLite's "database is locked"
ends its producer with a traceback and fails the test. Acknowledged = stored = completed.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from offload import Offload
from tests.integration._harness import Procs, wait_until

from ._ledger import Ledger, check, record_figures
from .conftest import APP


def run(
    app: Offload, procs: Procs, ledger: Ledger, workdir: Path, producers: int, each: int
) -> tuple[int, int]:
    """`producers` processes × `each` enqueues with two workers draining; (acknowledged,
    refused)."""
    started = [
        procs.start(["-m", "tests.faults.count_producer", f"p{i}", str(each)], name=f"producer{i}")
        for i in range(producers)
    ]
    wait_until(
        lambda: all((workdir / f"ready-p{i}").exists() for i in range(producers)),
        timeout=60,
        what="every producer to be ready",
        explain=procs.logs,
    )
    workers = [procs.worker(concurrency=8, app=APP, name=f"drain{i}") for i in range(2)]
    (workdir / "go").touch()
    for producer in started:
        assert producer.wait_exit(timeout=300) == 0, producer.tail()
    refused = [
        line
        for i in range(producers)
        for line in (workdir / f"refused-p{i}").read_text().splitlines()
    ]
    assert all("StoreBusyError" in line for line in refused), refused[:3]
    acknowledged = len(ledger.keys("ok"))
    assert acknowledged + len(refused) == producers * each
    wait_until(
        lambda: len(ledger.keys("end")) >= acknowledged,
        timeout=300,
        what=f"{acknowledged} jobs to run",
        explain=procs.logs,
    )
    for worker in workers:
        worker.signal(signal.SIGTERM)
    for worker in workers:
        assert worker.wait_exit() == 0, worker.tail()
    for proc in procs.started:
        assert "database is locked" not in proc.log(), proc.tail()
    return acknowledged, len(refused)


def verdict_of(app: Offload, ledger: Ledger, acknowledged: int) -> None:
    verdict = check(ledger, app)
    verdict.assert_holds()
    stored = sum(c.count for c in app.store.job_counts())
    completed = sum(c.count for c in app.store.job_counts() if c.state == "completed")
    assert acknowledged == stored == completed == len(verdict.ended)
    assert set(verdict.started.values()) == {1}, "a job ran twice without a fault"


@pytest.mark.slow  # a long fault run: CI time; run with -m slow
def test_four_producers_enqueue_at_once_while_two_workers_drain(
    app: Offload, procs: Procs, ledger: Ledger, workdir: Path, engine: str
) -> None:
    acknowledged, refused = run(app, procs, ledger, workdir, producers=4, each=500)
    verdict_of(app, ledger, acknowledged)
    record_figures(
        "C1 4 producers × 500 enqueue at once, 2 workers drain",
        engine,
        check(ledger, app),
        refused_busy=refused,
    )


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_eight_producers_enqueue_ten_thousand_each_while_two_workers_drain(
    app: Offload, procs: Procs, ledger: Ledger, workdir: Path, engine: str
) -> None:
    acknowledged, refused = run(app, procs, ledger, workdir, producers=8, each=10_000)
    verdict_of(app, ledger, acknowledged)
    record_figures(
        "C1 8 producers × 10,000 enqueue at once, 2 workers drain",
        engine,
        check(ledger, app),
        refused_busy=refused,
    )
