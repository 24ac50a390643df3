"""Timeouts, retries with backoff, manual retry, and how fast an idle worker picks up a job."""

from __future__ import annotations

import signal
import statistics
import time

import pytest

from offload import Offload

from ._harness import Ledger, Procs, record, state_is, wait_until


@pytest.mark.parametrize("kind", ["spin", "sleep_async"])
def test_a_job_past_its_timeout_fails_and_its_worker_goes_on(
    app: Offload, procs: Procs, ledger: Ledger, kind: str
) -> None:
    # One slot: the other jobs can only run if the timed-out job gave its slot back.
    worker = procs.worker(concurrency=1)
    slow = app.enqueue(kind, key="slow", seconds=60)
    ledger.wait_started("slow")
    quick = [app.enqueue("record", key=f"quick-{i}") for i in range(5)]

    dead = wait_until(state_is(app, slow.id, "dead"))
    assert (dead.attempt, dead.max_attempts) == (2, 2)
    assert [e["attempt"] for e in dead.errors] == [1, 2]
    for entry in dead.errors:
        assert entry["error"].startswith("JobTimeoutError"), entry
        assert "timeout" in entry["error"]
    for job in quick:
        assert wait_until(state_is(app, job.id, "completed")).result == worker.pid
    assert ledger.count("start", "slow") == 2
    assert ledger.count("end", "slow") == 0, "a timed-out job ran on to its end"

    assert worker.alive()
    worker.signal(signal.SIGTERM)
    assert worker.wait_exit() == 0


def test_a_job_failing_twice_completes_on_its_third_attempt(
    app: Offload, procs: Procs, ledger: Ledger
) -> None:
    procs.worker()
    job = app.enqueue("flaky", key="flaky", failures=2)

    done = wait_until(state_is(app, job.id, "completed"))
    assert (done.attempt, done.result) == (3, 3)
    assert [e["attempt"] for e in done.errors] == [1, 2]
    for n, entry in enumerate(done.errors, 1):
        assert entry["kind"] == "error"
        assert entry["error"] == f"RuntimeError: planned failure {n} of 2"
        assert entry["traceback"].startswith("Traceback (most recent call last)")
        assert "in flaky" in entry["traceback"]
        assert "raise RuntimeError" in entry["traceback"]
    assert ledger.count("start", "flaky") == 3


def test_a_job_that_always_fails_ends_dead_and_retry_runs_a_dead_job_again(
    app: Offload, procs: Procs, ledger: Ledger
) -> None:
    worker = procs.worker()
    always = app.enqueue("always_fails", key="always")
    late = app.call("flaky", max_attempts=2).enqueue(key="late", failures=2)

    dead = wait_until(state_is(app, always.id, "dead"))
    assert (dead.attempt, dead.max_attempts) == (3, 3)
    assert [(e["attempt"], e["error"]) for e in dead.errors] == [
        (n, "ValueError: always always fails") for n in (1, 2, 3)
    ]
    gave_up = wait_until(state_is(app, late.id, "dead"))
    assert (gave_up.attempt, len(gave_up.errors)) == (2, 2)

    assert late.retry() is True
    done = wait_until(state_is(app, late.id, "completed"))
    assert (done.attempt, done.result, len(done.errors)) == (3, 3, 2)

    worker.signal(signal.SIGTERM)
    assert worker.wait_exit() == 0
    assert ledger.count("start", "always") == 3, "a dead job ran again by itself"
    assert record(app, always.id).state == "dead"


def ms(seconds: list[float]) -> str:
    return f"median {statistics.median(seconds) * 1000:.1f} ms, max {max(seconds) * 1000:.1f} ms"


def test_an_idle_worker_picks_up_a_new_job(app: Offload, procs: Procs) -> None:
    worker = procs.worker(concurrency=1)  # the default 1 s poll: wake-ups must do better
    worker.wait_log("running queues")
    pickup, finish, seen = [], [], []
    for i in range(5):
        started = time.perf_counter()
        job = app.enqueue("record", key=f"job-{i}")
        done = wait_until(state_is(app, job.id, "completed"), interval=0.002)
        seen.append(time.perf_counter() - started)
        assert done.result == worker.pid
        assert done.attempted_at is not None and done.finished_at is not None
        pickup.append(done.attempted_at - done.inserted_at)
        finish.append(done.finished_at - done.inserted_at)
    print(
        f"\npickup latency on {app.store.engine}: enqueue to claim {ms(pickup)}; "
        f"enqueue to completed {ms(finish)}; seen completed by the producer {ms(seen)}"
    )
