"""`offload workflows list|show|cancel`, and stuck sagas in `offload stats`."""

from __future__ import annotations

from offload.store import open_store
from offload.store._contract import ClaimParams, Completion, Failure, NewJob
from offload.store._workflows import UNDO, NewStep, NewWorkflow

from ._helpers import CLI


def test_workflows_are_listed_shown_cancelled_and_stuck_ones_reported(
    cli: CLI, fresh_url: str
) -> None:
    store = open_store(fresh_url)
    try:
        store.migrate()
        steps = [
            NewStep("hold", NewJob("hold", "default", {})),
            NewStep("book", NewJob("book", "default", {}), ("hold",)),
            NewStep("undo:hold", NewJob("release", "default", {}), ("hold",), UNDO, "hold"),
        ]
        saga = store.workflow_create(NewWorkflow("saga", steps, name="trip"))
        chain = store.workflow_create(NewWorkflow("chain", [NewStep("a", NewJob("a", "q", {}))]))
        for _ in range(3):  # hold completes, book dies, the undo dies: stuck
            [job] = store.job_claim(ClaimParams(["default"], 1, "w", 600))
            if job.kind == "hold":
                store.job_complete_many([Completion(job.id, job.lease_token, "ok")])
            else:
                store.job_fail_many([Failure(job.id, job.lease_token, "no", "", None)])
    finally:
        store.close()

    listed = cli("workflows", "list", "--url", fresh_url).out
    assert "trip" in listed and "stuck" in listed and "chain" in listed
    assert (
        cli("workflows", "list", "--state", "stuck", "--json", "--url", fresh_url).json()[0]["id"]
        == saga
    )
    shown = cli("workflows", "show", str(saga), "--url", fresh_url).out
    assert "undo:hold" in shown and "stuck: an undo job ended dead" in shown
    assert "1 stuck saga(s)" in cli("stats", "--url", fresh_url).out
    assert "cancelled" in cli("workflows", "cancel", str(chain), "--url", fresh_url).out
    cli("workflows", "cancel", str(chain), "--url", fresh_url, code=1)
    cli("workflows", "show", "999", "--url", fresh_url, code=1)
