"""Paused queues and kinds with several real worker processes: their jobs stay queued while the
others run, every worker notices a pause and a resume at its next refresh, and resumed jobs run."""

from __future__ import annotations

from pathlib import Path

import pytest

from offload import Offload

from . import longapp
from ._harness import Ledger, Procs, record, state_is, wait_until

LONG_APP = "tests.integration.longapp:app"


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


def test_a_running_iteration_job_of_a_paused_kind_stops_at_its_next_yield(
    store_url: str, workdir: Path, monkeypatch: pytest.MonkeyPatch, procs: Procs
) -> None:
    monkeypatch.setenv("OFFLOAD_TEST_DIR", str(workdir))
    app = longapp.make_app(store_url)
    app.store.migrate()
    try:
        worker = procs.worker(concurrency=2, app=LONG_APP)
        job = app.enqueue("count_up", key="paused", n=400)
        wait_until(lambda: len(longapp.processed("paused")) >= 20, explain=worker.tail)
        assert app.store.pause_add("kind", "count_up").stopping == 1
        worker.wait_log("paused kinds: count_up")
        back = wait_until(state_is(app, job.id, "available"), explain=worker.tail)
        assert back.attempt == 0 and back.cursor is not None and back.stop_request is None
        seen = len(longapp.processed("paused"))
        assert seen < 400
        # Queued, not claimed: another job of the worker runs meanwhile, this one stays put.
        other = app.enqueue("count_up_async", key="other", n=5)
        wait_until(state_is(app, other.id, "completed"), explain=worker.tail)
        assert record(app, job.id).state == "available"

        assert app.store.pause_remove("kind", "count_up")
        wait_until(state_is(app, job.id, "completed"), timeout=60, explain=worker.tail)
        assert set(longapp.processed("paused")) == set(range(1, 401))
    finally:
        app.close()
