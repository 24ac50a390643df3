"""The workflows family of the store contract, on every engine: a step's job is made when the
steps it depends on have completed, in the transaction that ends them, whatever path ends them
(acknowledgements known to be steps or not, a final failure, a cancel, a rescue, a retry), and
once only, also when two transactions end the last two members of a group at the same moment."""

from __future__ import annotations

import threading

import pytest

from offload.store._contract import ClaimParams, Completion, Failure, Store
from offload.store._workflows import (
    ON_FAILURE,
    UNDO,
    NewStep,
    NewWorkflow,
    WorkflowFilter,
)

from ._helpers import claim, get, new_job


def _chain(store: Store, *names: str) -> int:
    steps = []
    for i, n in enumerate(names):
        after = (names[i - 1],) if i else ()
        steps.append(NewStep(n, new_job(n, args={"n": n}), after))
    return store.workflow_create(NewWorkflow("chain", steps))


def _step_jobs(store: Store, wid: int) -> dict[str, int | None]:
    wf = store.workflow_get(wid)
    assert wf is not None
    return {s.name: s.job_id for s in wf.steps}


def _run_all(store: Store, ok: bool = True, step: bool | None = None) -> list[str]:
    """Claim and complete (or fail for good) every available job; their kinds."""
    jobs = claim(store)
    if ok:
        store.job_complete_many([Completion(j.id, j.lease_token, j.kind, step) for j in jobs])
    else:
        store.job_fail_many([Failure(j.id, j.lease_token, "no", "", None, step=step) for j in jobs])
    return [j.kind for j in jobs]


@pytest.mark.parametrize("step", [None, True])
def test_a_chain_makes_each_job_once_the_one_before_completed(store: Store, step: bool) -> None:
    wid = _chain(store, "a", "b", "c")
    assert _step_jobs(store, wid)["b"] is None
    ran = []
    for _ in range(3):
        ran += _run_all(store, step=step)
    assert ran == ["a", "b", "c"]
    wf = store.workflow_get(wid)
    assert wf is not None and wf.state == "completed" and wf.finished_at is not None
    assert [(s.state, s.result) for s in wf.steps] == [("completed", n) for n in "abc"]
    job = get(store, wf.steps[1].job_id or 0)
    assert job.meta["workflow"] == [wid, "b"]


def test_one_acknowledgement_advances_every_workflow_its_steps_belong_to(store: Store) -> None:
    """A worker's cycle acknowledges steps of many workflows at once: each workflow advances
    in it, its due jobs made once, and the group whose last member ends completes."""
    chains = [_chain(store, f"a{i}", f"b{i}", f"c{i}") for i in range(3)]
    members = [NewStep("m1", new_job("m")), NewStep("m2", new_job("m"))]
    group = store.workflow_create(NewWorkflow("group", members))
    failing = [
        NewStep("x", new_job("x")),
        NewStep("y", new_job("y"), ("x",)),
        NewStep("on_failure", new_job("oops"), ("x",), ON_FAILURE),
    ]
    graph = store.workflow_create(NewWorkflow("graph", failing))
    jobs = claim(store)
    assert sorted(j.kind for j in jobs) == ["a0", "a1", "a2", "m", "m", "x"]
    done = [Completion(j.id, j.lease_token, j.kind, True) for j in jobs if j.kind != "x"]
    failed = [
        Failure(j.id, j.lease_token, "no", "", None, step=True) for j in jobs if j.kind == "x"
    ]
    got = store.job_ack_claim(done, failed, ClaimParams(["default"], 100, "w2", 600.0))
    assert (got.completed.applied, got.failed.applied) == (5, 1)
    made = [j.kind for j in got.claimed] + [j.kind for j in claim(store)]
    assert sorted(made) == ["b0", "b1", "b2", "oops"]
    for i, wid in enumerate(chains):
        wf = store.workflow_get(wid)
        assert wf is not None and wf.state == "running"
        assert [s.state for s in wf.steps] == ["completed", "created", "pending"]
        assert get(store, wf.steps[1].job_id or 0).meta["workflow"] == [wid, f"b{i}"]
    assert [store.workflow_get(w).state for w in (group, graph)] == ["completed", "failed"]  # type: ignore[union-attr]


def test_a_chains_next_step_wakes_an_idle_worker(store: Store) -> None:
    """The acknowledgement that completes a step makes the next one's job and rings its
    queue's listeners when it commits: an idle worker claims it without waiting for its poll
    or for the leader's sweep."""
    wid = _chain(store, "a", "b")
    [first] = claim(store)
    listener = store.listener(["default"])
    try:
        while listener.wait(0.05):  # forget what happened before
            continue
        store.job_ack_claim([Completion(first.id, first.lease_token, 1, True)], (), None)
        assert listener.wait(10.0), "no wake-up for the chain's next step"
        [second] = claim(store, worker_id="idle")
        assert second.kind == "b" and second.id == _step_jobs(store, wid)["b"]
    finally:
        listener.close()


def test_a_job_not_known_as_a_step_advances_nothing_when_marked_plain(store: Store) -> None:
    """A worker marks acknowledgements of plain jobs (step=False): nothing is looked up."""
    wid = _chain(store, "a", "b")
    _run_all(store, step=False)
    assert _step_jobs(store, wid)["b"] is None
    assert store.workflow_sweep() == 1  # the leader's sweep is the safety net
    assert _step_jobs(store, wid)["b"] is not None


def test_results_are_those_of_the_completed_steps_a_step_depends_on(store: Store) -> None:
    steps = [
        NewStep("a", new_job("a")),
        NewStep("b", new_job("b")),
        NewStep("c", new_job("c"), ("a", "b")),
    ]
    wid = store.workflow_create(NewWorkflow("graph", steps))
    assert sorted(_run_all(store)) == ["a", "b"]
    assert store.workflow_results(wid, "c") == {"a": "a", "b": "b"}
    assert _run_all(store) == ["c"]


def test_a_dead_member_fails_the_group_and_runs_on_failure(store: Store) -> None:
    steps = [
        NewStep("m1", new_job("m")),
        NewStep("then", new_job("then"), ("m1",)),
        NewStep("on_failure", new_job("oops"), ("m1",), ON_FAILURE),
    ]
    wid = store.workflow_create(NewWorkflow("group", steps))
    _run_all(store, ok=False)
    wf = store.workflow_get(wid)
    assert wf is not None and wf.state == "failed"
    assert _run_all(store) == ["oops"]
    assert _step_jobs(store, wid)["then"] is None


def test_cancelling_a_step_job_fails_its_workflow(store: Store) -> None:
    wid = _chain(store, "a", "b")
    assert store.job_cancel(_step_jobs(store, wid)["a"] or 0)
    wf = store.workflow_get(wid)
    assert wf is not None and wf.state == "failed"


def _saga(store: Store, n: int = 3) -> int:
    steps, undos = [], []
    for i in range(1, n + 1):
        steps.append(NewStep(f"s{i}", new_job(f"s{i}"), (f"s{i - 1}",) if i > 1 else ()))
        undos.append(NewStep(f"undo:s{i}", new_job(f"u{i}"), (f"s{i}",), UNDO, f"s{i}"))
    return store.workflow_create(NewWorkflow("saga", steps + undos))


def test_a_saga_undoes_completed_steps_in_reverse_one_at_a_time(store: Store) -> None:
    wid = _saga(store)
    assert _run_all(store) == ["s1"]
    assert _run_all(store) == ["s2"]
    assert _run_all(store, ok=False) == ["s3"]
    assert store.workflow_get(wid).state == "compensating"  # type: ignore[union-attr]
    assert _run_all(store) == ["u2"]
    assert _run_all(store) == ["u1"]
    assert _run_all(store) == []
    assert store.workflow_get(wid).state == "compensated"  # type: ignore[union-attr]


def test_a_dead_undo_makes_the_saga_stuck_and_its_retry_resumes_it(store: Store) -> None:
    wid = _saga(store, 2)
    _run_all(store)
    _run_all(store, ok=False)  # s2 dies
    [undo] = claim(store)
    store.job_fail_many([Failure(undo.id, undo.lease_token, "no", "", None)])
    assert store.workflow_get(wid).state == "stuck"  # type: ignore[union-attr]
    assert store.workflow_counts() == {"stuck": 1}
    assert store.job_retry(undo.id)
    assert store.workflow_get(wid).state == "compensating"  # type: ignore[union-attr]
    assert _run_all(store) == ["u1"]
    assert store.workflow_get(wid).state == "compensated"  # type: ignore[union-attr]


def test_cancelling_a_saga_compensates_and_a_graph_ends_cancelled(store: Store) -> None:
    wid = _saga(store)
    _run_all(store)  # s1 completed, s2 available
    assert store.workflow_cancel(wid)
    assert not store.workflow_cancel(wid)  # not running any more
    assert _run_all(store) == ["u1"]
    assert store.workflow_get(wid).state == "compensated"  # type: ignore[union-attr]

    gid = _chain(store, "a", "b")
    assert store.workflow_cancel(gid)
    wf = store.workflow_get(gid)
    assert wf is not None and wf.state == "cancelled"
    assert get(store, wf.steps[0].job_id or 0).state == "cancelled"


def test_listing_and_counting_workflows(store: Store) -> None:
    a = _chain(store, "a")
    b = _saga(store)
    assert [w.id for w in store.workflow_list(WorkflowFilter())] == [b, a]
    assert [w.id for w in store.workflow_list(WorkflowFilter(kind="saga"))] == [b]
    assert store.workflow_list(WorkflowFilter(states=["completed"])) == []
    assert store.workflow_counts() == {"running": 2}
    assert store.workflow_get(12345) is None


def test_a_bad_graph_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="cycle"):
        store.workflow_create(
            NewWorkflow("graph", [NewStep("a", new_job(), ("b",)), NewStep("b", new_job(), ("a",))])
        )
    with pytest.raises(ValueError, match="no step"):
        store.workflow_create(NewWorkflow("graph", [NewStep("a", new_job(), ("x",))]))


def test_two_transactions_ending_the_last_two_members_make_the_callback_once(
    store: Store,
) -> None:
    """The second waits for the first (the workflow row's lock on PostgreSQL, the write lock on
    SQLite) and, seeing its commit, makes the callback; the first, not seeing the second's
    completion, made none."""
    steps = [NewStep("m1", new_job("m")), NewStep("m2", new_job("m"))]
    steps.append(NewStep("then", new_job("then"), ("m1", "m2")))
    wid = store.workflow_create(NewWorkflow("group", steps))
    m1, m2 = claim(store)
    second_done = threading.Event()
    errors: list[BaseException] = []

    def second() -> None:
        try:
            store.job_complete_many([Completion(m2.id, m2.lease_token, 2)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        second_done.set()

    with store.transaction() as tx:
        tx.job_complete_many([Completion(m1.id, m1.lease_token, 1)])
        thread = threading.Thread(target=second)
        thread.start()
        assert not second_done.wait(0.3)  # it waits for this transaction
    thread.join(30)
    assert not errors, errors
    assert _run_all(store) == ["then"]
    assert store.workflow_get(wid).state == "completed"  # type: ignore[union-attr]


def test_a_stuck_sagas_undo_retried_by_a_bulk_retry_resumes_at_the_sweep(store: Store) -> None:
    from offload.store._bulk import JobMatch

    wid = _saga(store, 2)
    _run_all(store)
    _run_all(store, ok=False)  # s2 dies
    _run_all(store, ok=False)  # the undo of s1 dies: stuck
    assert store.workflow_get(wid).state == "stuck"  # type: ignore[union-attr]
    assert store.job_bulk("retry", JobMatch(kind="u1")).count == 1
    assert store.workflow_sweep() == 1
    assert store.workflow_get(wid).state == "compensating"  # type: ignore[union-attr]
    assert _run_all(store) == ["u1"]
    assert store.workflow_get(wid).state == "compensated"  # type: ignore[union-attr]


def test_inline_mode_runs_a_workflow_to_its_end(store_url: str) -> None:
    from offload import Offload
    from offload.testing import inline

    app = Offload(store_url)
    seen: list[int] = []

    @app.job()
    def step(n: int) -> int:
        seen.append(n)
        return n

    with inline(app):
        wf = app.chain(step.prepare(1), step.prepare(2)).enqueue()
    assert seen == [1, 2] and wf.refresh().state == "completed"
    app.close()
