"""A job's completion and the jobs it causes commit together, on every engine: a real worker
runs a job that enqueues a follow-up and completes itself in one `app.transaction()`, and is
SIGKILLed inside the block (before the commit: neither is stored) or right after the commit
(both are). The fault points are in txapp.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from offload import Offload
from offload.store._contract import JobFilter, JobRecord
from tests.integration._harness import Proc, Procs, counter, record, state_is, wait_until

from .txapp import FOLLOW_UPS, make_app

APP = "tests.faults.txapp:app"


@pytest.fixture
def app(store_url: str) -> Iterator[Offload]:
    application = make_app(store_url)
    application.store.migrate()
    yield application
    application.close()


@pytest.fixture
def procs(app: Offload, workdir: Path) -> Iterator[Procs]:
    started = Procs(app.config.url, workdir)
    yield started
    started.cleanup()


def follow_ups(app: Offload) -> list[JobRecord]:
    return app.store.job_list(JobFilter(queue=FOLLOW_UPS))


def killed(proc: Proc, app: Offload, job_id: int) -> None:
    """Wait for the worker to die at its fault point (or for the job to fail instead, which
    fails the test at once with the job's error)."""
    wait_until(
        lambda: not proc.alive() or record(app, job_id).errors,
        timeout=60,
        what="the worker to be killed at its fault point",
    )
    assert not record(app, job_id).errors, record(app, job_id).errors
    assert proc.wait_exit() == -9, proc.tail()


def test_killed_before_the_commit_stores_neither(app: Offload, procs: Procs) -> None:
    worker = procs.worker(app=APP, concurrency=1, maintenance=False, env={"TX_FAULT": "inside"})
    job = app.job_type("charge").enqueue(1)
    killed(worker, app, job.id)

    assert follow_ups(app) == []
    left = record(app, job.id)
    assert (left.state, left.result) == ("running", None)  # its lease runs out: rescued

    procs.worker(app=APP, concurrency=1)  # a healthy worker rescues and reruns it
    done = wait_until(state_is(app, job.id, "completed"), timeout=60, what="the rerun")
    assert done.result["charged"] == 1
    assert [(f.kind, f.args) for f in follow_ups(app)] == [("ship", {"order": 1})]
    assert counter(app, "stale_acks") == 0  # the worker did not acknowledge it again


def test_killed_after_the_commit_stores_both(app: Offload, procs: Procs) -> None:
    worker = procs.worker(app=APP, concurrency=1, maintenance=False, env={"TX_FAULT": "after"})
    job = app.job_type("charge").enqueue(2)
    killed(worker, app, job.id)

    done = record(app, job.id)
    assert done.state == "completed"
    assert done.result == {"charged": 2, "pid": worker.pid}
    [follow_up] = follow_ups(app)
    assert (follow_up.kind, follow_up.args, follow_up.state) == ("ship", {"order": 2}, "available")
