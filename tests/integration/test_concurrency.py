"""Many processes on one store: concurrent producers (catalogue C1) and many workers (E1).

Every acknowledged enqueue is stored once and runs once: the producers' acknowledgements, the
store's rows and the jobs' ledger must agree exactly.
"""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import pytest

from offload import Offload

from ._harness import Ledger, Procs, all_jobs, count_in, counts, wait_until

PRODUCERS = 8
PER_PRODUCER = 500
WORKERS = 4
JOBS = 8000


def _drained(app: Offload, total: int) -> bool:
    return count_in(app, "completed") == total


@pytest.mark.slow
def test_eight_producers_enqueue_at_once_while_two_workers_drain(
    app: Offload, procs: Procs, ledger: Ledger, workdir: Path
) -> None:
    producers = [
        procs.start(
            ["-m", "tests.integration.producer", f"p{i}", str(PER_PRODUCER)], name=f"producer{i}"
        )
        for i in range(PRODUCERS)
    ]
    wait_until(
        lambda: all((workdir / f"ready-p{i}").exists() for i in range(PRODUCERS)),
        timeout=60,
        what="every producer to be ready",
        explain=procs.logs,
    )
    workers = [procs.worker(concurrency=10, name=f"drain{i}") for i in range(2)]
    (workdir / "go").touch()
    for producer in producers:
        assert producer.wait_exit(timeout=120) == 0, producer.tail()

    errors = [
        line
        for i in range(PRODUCERS)
        for line in (workdir / f"errors-p{i}").read_text().splitlines()
    ]
    assert errors == [], f"{len(errors)} enqueues failed, e.g. {errors[:3]}"
    acked = dict(
        line.split()
        for i in range(PRODUCERS)
        for line in (workdir / f"acked-p{i}").read_text().splitlines()
    )
    total = PRODUCERS * PER_PRODUCER
    assert len(acked) == total
    assert len(set(acked.values())) == total, "two enqueues got the same id"

    wait_until(
        lambda: _drained(app, total),
        timeout=120,
        what=f"{total} jobs to complete",
        explain=lambda: counts(app),
    )
    for worker in workers:
        worker.signal(signal.SIGTERM)
    for worker in workers:
        assert worker.wait_exit() == 0
    for proc in producers + workers:
        assert "database is locked" not in proc.log(), proc.tail()

    assert counts(app) == {"completed": total}
    stored = {str(j.args["key"]): str(j.id) for j in all_jobs(app, kind="record")}
    assert stored == acked
    runs = ledger.tally("run")
    assert set(runs) == set(acked)
    assert set(runs.values()) == {1}, [k for k, n in runs.items() if n > 1][:10]


@pytest.mark.slow
def test_many_workers_run_every_job_exactly_once(
    app: Offload, procs: Procs, ledger: Ledger
) -> None:
    record = app.job_type("record")
    for start in range(0, JOBS, 1000):
        app.enqueue_many(record.prepare(key=str(i)) for i in range(start, start + 1000))
    workers = [procs.worker(concurrency=10, name=f"worker{i}") for i in range(WORKERS)]

    wait_until(
        lambda: _drained(app, JOBS),
        timeout=120,
        what=f"{JOBS} jobs to complete",
        explain=lambda: counts(app),
    )
    for worker in workers:
        worker.signal(signal.SIGTERM)
    for worker in workers:
        assert worker.wait_exit() == 0

    jobs = all_jobs(app, kind="record")
    assert len(jobs) == JOBS
    assert {(j.state, j.attempt, j.crashes) for j in jobs} == {("completed", 1, 0)}
    runs = ledger.tally("run")
    assert len(runs) == JOBS
    assert set(runs.values()) == {1}, [k for k, n in runs.items() if n > 1][:10]
    by_worker = Counter(j.result for j in jobs)
    print(f"\njobs per worker process: {sorted(by_worker.values(), reverse=True)}")
