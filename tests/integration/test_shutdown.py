"""Graceful and forced shutdown of workers and of the supervisor (catalogue A6)."""

from __future__ import annotations

import os
import signal

from offload import Offload

from ._harness import Ledger, Procs, count_in, record, state_is, wait_until


def test_sigterm_lets_the_running_job_finish_and_claims_nothing_new(
    app: Offload, procs: Procs, ledger: Ledger
) -> None:
    worker = procs.worker(concurrency=4)
    running = app.enqueue("hold", key="running")
    ledger.wait_started("running")

    worker.signal(signal.SIGTERM)
    worker.wait_log("SIGTERM received")
    later = app.enqueue("record", key="later")
    ledger.release("running")
    assert worker.wait_exit() == 0

    done = record(app, running.id)
    assert (done.state, done.result, done.attempt) == ("completed", worker.pid, 1)
    untouched = record(app, later.id)
    assert (untouched.state, untouched.attempt, untouched.lease_token) == ("available", 0, None)
    assert ledger.count("run", "later") == 0


def test_jobs_running_past_the_grace_period_are_put_back(
    app: Offload, procs: Procs, ledger: Ledger
) -> None:
    worker = procs.worker("--grace", "0.5", concurrency=4)
    again = app.enqueue("hold", key="again")
    once = app.enqueue("hold_once", key="once")
    ledger.wait_started("again")
    ledger.wait_started("once")

    worker.signal(signal.SIGTERM)
    assert worker.wait_exit() == 0
    back = record(app, again.id)
    assert (back.state, back.attempt, back.errors) == ("available", 0, []), "an attempt was burnt"
    gone = record(app, once.id)
    assert gone.state == "dead"
    assert "abandoned" in gone.errors[-1]["error"]

    # Nothing is stuck: the job put back runs on the next worker.
    ledger.release("again")
    ledger.release("once")
    successor = procs.worker()
    assert wait_until(state_is(app, again.id, "completed")).result == successor.pid
    successor.signal(signal.SIGTERM)
    assert successor.wait_exit() == 0
    assert ledger.pids("start", "once") == [worker.pid]


def test_a_second_signal_stops_the_worker_at_once(
    app: Offload, procs: Procs, ledger: Ledger
) -> None:
    worker = procs.worker(concurrency=4)  # grace: the default 30 s
    again = app.enqueue("hold", key="again")
    once = app.enqueue("hold_once", key="once")
    ledger.wait_started("again")
    ledger.wait_started("once")

    worker.signal(signal.SIGTERM)
    worker.wait_log("SIGTERM received")
    worker.signal(signal.SIGINT)
    assert worker.wait_exit() == 1
    assert ledger.count("end", "again") == ledger.count("end", "once") == 0

    back = record(app, again.id)
    assert (back.state, back.attempt) == ("available", 0)
    gone = record(app, once.id)
    assert gone.state == "dead", "an at-most-once job that had started was put back to run again"
    assert "abandoned" in gone.errors[-1]["error"]
    assert count_in(app, "running") == 0


def test_ctrl_c_on_a_supervisors_process_group_is_one_graceful_stop(
    app: Offload, procs: Procs, ledger: Ledger
) -> None:
    supervisor = procs.worker("--processes", "2", concurrency=2, name="supervisor")
    job = app.enqueue("hold", key="held")
    ledger.wait_started("held")

    # A terminal's Ctrl-C signals the whole foreground process group, not just its leader.
    os.killpg(supervisor.pid, signal.SIGINT)
    supervisor.wait_log("SIGINT received")
    ledger.release("held")
    assert supervisor.wait_exit() == 0
    done = record(app, job.id)
    assert (done.state, done.errors) == ("completed", []), "the job was cut short"
    assert ledger.count("end", "held") == 1


def test_a_supervisor_stopped_while_it_restarts_a_child_exits(app: Offload, procs: Procs) -> None:
    supervisor = procs.worker("--processes", "2", concurrency=1, name="supervisor")
    children = wait_until(
        lambda: (w := app.store.worker_list(60)) and len(w) == 2 and w,
        what="both worker processes to register",
    )
    os.kill(children[0].pid, signal.SIGKILL)
    supervisor.wait_log("restarting in")
    supervisor.signal(signal.SIGTERM)
    assert supervisor.wait_exit(timeout=20) == 0
