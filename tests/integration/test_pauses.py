"""Paused queues and kinds with several real worker processes: their jobs stay queued while the
others run, every worker notices a pause and a resume at its next refresh, and resumed jobs run."""

from __future__ import annotations

from offload import Offload

from ._harness import Ledger, Procs, record, state_is, wait_until


def test_paused_queues_and_kinds_wait_while_others_run(
    app: Offload, procs: Procs, ledger: Ledger
) -> None:
    workers = [procs.worker(queues="default,other", concurrency=2, name=f"w{i}") for i in (1, 2)]
    for w in workers:
        w.wait_log("running queues")
    app.store.pause_add("queue", "other", by="test", reason="integration test")
    app.store.pause_add("kind", "tick")
    for w in workers:  # each worker reads the paused set at its next refresh
        w.wait_log("paused queues: other; paused kinds: tick")

    in_paused_queue = app.call("record", queue="other").enqueue(key="in-paused-queue")
    of_paused_kind = app.enqueue("tick")
    active = [app.enqueue("record", key=f"active-{i}") for i in range(4)]
    for job in active:  # enqueued last: the workers passed over the paused ones to run them
        wait_until(state_is(app, job.id, "completed"))
    assert record(app, in_paused_queue.id).state == "available"
    assert record(app, of_paused_kind.id).state == "available"
    assert ledger.count("run", "in-paused-queue") == 0
    assert ledger.count("run", "tick") == 0

    assert app.store.pause_remove("queue", "other")
    assert app.store.pause_remove("kind", "tick")
    for w in workers:
        w.wait_log("paused queues: none; paused kinds: none")
    wait_until(state_is(app, in_paused_queue.id, "completed"))
    wait_until(state_is(app, of_paused_kind.id, "completed"))
    assert ledger.count("run", "in-paused-queue") == 1
    assert ledger.count("run", "tick") == 1
