"""Workflows survive their workers' deaths, on every engine: a worker SIGKILLed in the middle of
a saga, or in the middle of its compensation, changes nothing in the outcome (the job it ran is
rescued and runs again), and a step's completion and the jobs of the steps it unblocks commit
together: a worker killed between them (inside the acknowledgement's transaction, once those
jobs are inserted) leaves neither, and the rerun makes them once."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from offload import Offload, Step, WorkflowHandle
from offload.store._contract import JobFilter
from tests.integration._harness import Ledger, Procs, record, wait_until
from tests.integration.workflowapp import make_app

APP = "tests.integration.workflowapp:app"


@pytest.fixture
def app(store_url: str) -> Iterator[Offload]:
    application = make_app(store_url)
    application.store.migrate()
    yield application
    application.close()


@pytest.fixture
def wf_ledger(workdir: Path) -> Ledger:
    return Ledger(workdir)


def settled(wf: WorkflowHandle, timeout: float = 60.0) -> str:
    return wait_until(
        lambda: wf.refresh().state not in ("running", "compensating") and wf.state,
        timeout,
        f"workflow {wf.id} to settle",
        lambda: [(s.name, s.state, s.job_id) for s in wf.refresh().steps],
    )


def _saga(app: Offload, hold: str, fail_third: bool) -> WorkflowHandle:
    step, undo = app.job_type("step"), app.job_type("undo")
    third = step.options(max_attempts=1) if fail_third else step
    return app.saga(
        [
            Step(step.prepare("s1"), undo=undo.prepare("s1", hold=hold == "u1"), name="s1"),
            Step(
                step.prepare("s2", hold=hold == "s2"),
                undo=undo.prepare("s2", hold=hold == "u2"),
                name="s2",
            ),
            Step(third.prepare("s3"), undo=undo.prepare("s3"), name="s3"),
        ]
    ).enqueue()


def test_a_worker_killed_in_the_middle_of_a_saga_changes_nothing(
    app: Offload, procs: Procs, wf_ledger: Ledger
) -> None:
    procs.maintainer()
    victim = procs.worker(app=APP, concurrency=2, maintenance=False, name="killed")
    wf = _saga(app, hold="s2", fail_third=False)
    [pid] = wf_ledger.wait_started("s2")
    assert pid == victim.pid
    victim.signal(signal.SIGKILL)
    assert victim.wait_exit() == -9

    procs.worker(app=APP, concurrency=2, name="successor")
    wf_ledger.wait_started("s2", times=2)  # rescued, and run again
    wf_ledger.release("s2")
    assert settled(wf) == "completed"
    assert [k for e, k, _ in wf_ledger.lines() if e == "end"] == ["s1", "s2", "s3"]
    assert wf_ledger.lines().count(("undo", "s1", pid)) == 0


def test_a_worker_killed_in_the_middle_of_a_compensation_changes_nothing(
    app: Offload, procs: Procs, wf_ledger: Ledger, workdir: Path
) -> None:
    procs.maintainer()
    victim = procs.worker(app=APP, concurrency=2, maintenance=False, name="killed")
    (workdir / "fail-s3").touch()
    wf = _saga(app, hold="u2", fail_third=True)
    wait_until(lambda: wf_ledger.pids("undo", "s2"), what="the undo of s2 to start")
    victim.signal(signal.SIGKILL)
    assert victim.wait_exit() == -9

    procs.worker(app=APP, concurrency=2, name="successor")
    wait_until(lambda: len(wf_ledger.pids("undo", "s2")) >= 2, what="the undo of s2 to rerun")
    wf_ledger.release("undo-s2")
    assert settled(wf) == "compensated"
    undos = [(e, k) for e, k, _ in wf_ledger.lines() if e in ("undo", "undone")]
    expected = [("undo", "s2"), ("undo", "s2"), ("undone", "s2"), ("undo", "s1"), ("undone", "s1")]
    assert undos == expected


def test_a_completion_and_the_steps_it_unblocks_commit_together(
    app: Offload, procs: Procs, wf_ledger: Ledger
) -> None:
    procs.maintainer()
    victim = procs.worker(
        app=APP, concurrency=1, maintenance=False, name="killed", env={"WF_FAULT": "advance"}
    )
    step = app.job_type("step")
    wf = app.chain(step.prepare("a"), step.prepare("b")).enqueue()
    assert victim.wait_exit(60) == -9  # killed inside the transaction that completes `a`

    first = wf.refresh().step("step")
    assert first.state == "created" and wf.step("step.2").job_id is None
    assert record(app, first.job_id or 0).state == "running"  # not completed: rolled back
    assert [j.id for j in app.store.job_list(JobFilter(limit=10))] == [first.job_id]

    procs.worker(app=APP, concurrency=1, name="successor")
    assert settled(wf) == "completed"
    assert len(app.store.job_list(JobFilter(limit=10))) == 2  # `b` was made once
    assert wf_ledger.count("end", "b") == 1
