"""Workflows run by real worker processes, on every engine: a chain in order, a group's
callback once after all its members (also when two workers end the last two at the same
moment), a group's on_failure, a graph whose steps read the results of the steps before them,
and sagas that compensate in reverse order, on a dead step or a cancel, or end stuck."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from offload import Offload, Step, WorkflowHandle

from ._harness import Ledger, Procs, wait_until
from .workflowapp import make_app

APP = "tests.integration.workflowapp:app"


@pytest.fixture
def app(store_url: str) -> Iterator[Offload]:
    application = make_app(store_url)
    application.store.migrate()
    yield application
    application.close()


def settled(wf: WorkflowHandle, timeout: float = 60.0) -> str:
    """Wait for a workflow to settle; its state."""
    return wait_until(
        lambda: wf.refresh().state not in ("running", "compensating") and wf.state,
        timeout,
        f"workflow {wf.id} to settle",
        lambda: [(s.name, s.state, s.job_id) for s in wf.refresh().steps],
    )


def order(ledger: Ledger, *events: str) -> list[tuple[str, str]]:
    return [(e, k) for e, k, _ in ledger.lines() if e in events]


def test_a_chain_runs_in_order(app: Offload, procs: Procs, ledger: Ledger) -> None:
    procs.worker(app=APP, concurrency=4)
    procs.worker(app=APP, concurrency=4)
    step = app.job_type("step")
    wf = app.chain(*[step.prepare(k) for k in "abcde"]).enqueue()

    assert settled(wf) == "completed"
    expected = [(e, k) for k in "abcde" for e in ("start", "end")]
    assert order(ledger, "start", "end") == expected
    assert wf.results() == {"step": "a", "step.2": "b", "step.3": "c", "step.4": "d", "step.5": "e"}


def test_a_groups_callback_runs_once_after_all_members(
    app: Offload, procs: Procs, ledger: Ledger
) -> None:
    procs.worker(app=APP, concurrency=4)
    procs.worker(app=APP, concurrency=4)
    step, collect = app.job_type("step"), app.job_type("collect")
    keys = [f"m{i}" for i in range(12)]
    wf = app.group([step.prepare(k) for k in keys], then=collect.prepare("done")).enqueue()

    assert settled(wf) == "completed"
    lines = order(ledger, "start", "end")
    assert lines.count(("start", "done")) == 1
    assert lines.index(("start", "done")) > max(lines.index(("end", k)) for k in keys)
    assert sorted(wf.step("then").result.values()) == sorted(keys)


def test_two_workers_ending_the_last_two_members_together_run_the_callback_once(
    app: Offload, procs: Procs, ledger: Ledger
) -> None:
    procs.worker("--prefetch", "0", app=APP, concurrency=1)  # one member in each worker
    procs.worker("--prefetch", "0", app=APP, concurrency=1)
    step, collect = app.job_type("step"), app.job_type("collect")
    for round_ in range(3):
        a, b = f"a{round_}", f"b{round_}"
        members = [step.prepare(a, hold=True), step.prepare(b, hold=True)]
        wf = app.group(members, then=collect.prepare(f"then{round_}")).enqueue()
        ledger.wait_started(a)
        ledger.wait_started(b)
        assert ledger.pids("start", a) != ledger.pids("start", b)  # one in each worker
        ledger.release(a)
        ledger.release(b)
        assert settled(wf) == "completed"
        assert ledger.count("start", f"then{round_}") == 1
        assert len(app.store.job_list(_kind("collect"))) == round_ + 1


def test_a_groups_on_failure_runs_once_when_a_member_dies(
    app: Offload, procs: Procs, ledger: Ledger, workdir: Path
) -> None:
    procs.worker(app=APP, concurrency=4)
    step, collect = app.job_type("step"), app.job_type("collect")
    (workdir / "fail-bad").touch()
    bad = step.options(max_attempts=1).prepare("bad")
    members = [step.prepare("ok1"), bad, step.prepare("ok2")]
    wf = app.group(members, then=collect.prepare("then"), on_failure=collect.prepare("oops"))
    handle = wf.enqueue()

    assert settled(handle) == "failed"
    wait_until(lambda: handle.refresh().step("on_failure").state == "completed")
    assert ledger.count("start", "oops") == 1
    assert ledger.count("start", "then") == 0
    assert handle.step("then").job_id is None


def test_a_graphs_steps_read_the_results_of_those_they_depend_on(
    app: Offload, procs: Procs
) -> None:
    procs.worker(app=APP, concurrency=4)
    step, collect = app.job_type("step"), app.job_type("collect")
    wf = (
        app.workflow(name="report")
        .step("fetch", step.prepare("f"))
        .step("left", step.prepare("l"), depends_on="fetch")
        .step("right", step.prepare("r"), depends_on=["fetch"])
        .step("merge", collect.prepare("m"), depends_on=["left", "right"])
        .enqueue()
    )
    assert settled(wf) == "completed"
    assert wf.step("merge").result == {"left": "l", "right": "r"}
    assert wf.name == "report"


def _saga(app: Offload, *, fail_third: bool = True, hold: str | None = None) -> WorkflowHandle:
    step, undo = app.job_type("step"), app.job_type("undo")
    third = step.options(max_attempts=1) if fail_third else step
    return app.saga(
        [
            Step(step.prepare("s1", hold=hold == "s1"), undo=undo.prepare("s1"), name="s1"),
            Step(step.prepare("s2", hold=hold == "s2"), undo=undo.prepare("s2"), name="s2"),
            Step(third.prepare("s3"), undo=undo.prepare("s3"), name="s3"),
        ]
    ).enqueue()


def test_a_saga_whose_third_step_dies_undoes_the_second_then_the_first(
    app: Offload, procs: Procs, ledger: Ledger, workdir: Path
) -> None:
    procs.worker(app=APP, concurrency=4)
    procs.worker(app=APP, concurrency=4)
    (workdir / "fail-s3").touch()
    wf = _saga(app)

    assert settled(wf) == "compensated"
    assert order(ledger, "undo", "undone") == [
        ("undo", "s2"),
        ("undone", "s2"),
        ("undo", "s1"),
        ("undone", "s1"),
    ]
    assert wf.step("undo:s3").job_id is None  # the step that died is not undone


def test_a_cancelled_saga_compensates(app: Offload, procs: Procs, ledger: Ledger) -> None:
    procs.worker(app=APP, concurrency=4)
    wf = _saga(app, fail_third=False, hold="s2")
    ledger.wait_started("s2")
    assert wf.cancel()
    assert wf.refresh().state == "compensating"  # waits for the running step to end
    ledger.release("s2")

    assert settled(wf) == "compensated"
    assert ledger.count("start", "s3") == 0
    assert order(ledger, "undone") == [("undone", "s2"), ("undone", "s1")]


def test_an_undo_that_dies_leaves_the_saga_stuck_until_it_is_retried(
    app: Offload, procs: Procs, ledger: Ledger, workdir: Path
) -> None:
    procs.worker(app=APP, concurrency=4)
    step, undo = app.job_type("step"), app.job_type("undo")
    (workdir / "fail-s2").touch()
    (workdir / "fail-undo-s1").touch()
    wf = app.saga(
        [
            Step(step.prepare("s1"), undo=undo.options(max_attempts=1).prepare("s1"), name="s1"),
            Step(step.options(max_attempts=1).prepare("s2"), undo=undo.prepare("s2"), name="s2"),
        ]
    ).enqueue()

    assert settled(wf) == "stuck"
    assert app.workflows.counts().get("stuck") == 1
    (workdir / "fail-undo-s1").unlink()
    job_id = wf.step("undo:s1").job_id
    assert job_id is not None and app.store.job_retry(job_id)
    assert settled(wf) == "compensated"
    assert ledger.count("undone", "s1") == 1


def _kind(kind: str):  # type: ignore[no-untyped-def]
    from offload.store._contract import JobFilter

    return JobFilter(kind=kind, limit=100)


def test_jobs_enqueued_by_a_running_job_carry_its_id_and_its_roots(
    app: Offload, procs: Procs
) -> None:
    procs.worker(app=APP, concurrency=4)
    root = app.job_type("spawn").enqueue(2)
    tree = wait_until(
        lambda: (
            (t := app.store.job_tree(root.id))
            and len(t) == 7
            and all(s == "completed" for *_, s in t)
            and t
        ),
        what="the tree of 7 jobs to complete",
    )
    parents = {job_id: parent for job_id, parent, _, _ in tree}
    assert parents[root.id] is None
    children = [j for j, p in parents.items() if p == root.id]
    assert len(children) == 2
    grandchildren = [j for j, p in parents.items() if p in children]
    assert len(grandchildren) == 4
    for job_id in children + grandchildren:
        job = app.get_job(job_id)
        assert job.root_id == root.id
        assert job.parent_id == parents[job_id]
    assert root.refresh().root_id is None
