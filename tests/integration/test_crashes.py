"""Workers killed and paused for real (catalogue A1, A4, A7): jobs are recovered, fenced off and
stopped when poisonous."""

from __future__ import annotations

import signal

from offload import Offload

from ._harness import Ledger, Procs, count_in, counter, record, state_is, wait_until


def test_a_killed_workers_jobs_run_again_or_end_abandoned_when_at_most_once(
    app: Offload, procs: Procs, ledger: Ledger
) -> None:
    # One worker, so it is also the maintenance leader: its successor must take leadership over.
    first = procs.worker(concurrency=2, name="killed")
    again = app.enqueue("hold", key="again")
    once = app.enqueue("hold_once", key="once")
    ledger.wait_started("again")
    ledger.wait_started("once")

    first.signal(signal.SIGKILL)
    first.wait_exit()
    lost = record(app, again.id)
    assert lost.state == record(app, once.id).state == "running"
    assert lost.lease_expires_at is not None
    ledger.release("again")
    ledger.release("once")
    second = procs.worker(name="successor")

    done = wait_until(state_is(app, again.id, "completed"))
    dead = wait_until(state_is(app, once.id, "dead"))
    assert done.result == second.pid
    assert done.attempted_at is not None and done.attempted_at >= lost.lease_expires_at, (
        "claimed again before the lost worker's lease expired"
    )
    assert ledger.pids("start", "again") == [first.pid, second.pid]
    assert ledger.pids("end", "again") == [second.pid]
    # A crash is counted apart from attempts: the rerun is attempt 1 again, after one crash.
    assert (done.attempt, done.crashes) == (1, 1)
    assert [(e["kind"], e["attempt"]) for e in done.errors] == [("crash", 1)]
    assert "worker lost" in done.errors[0]["error"]

    assert dead.crashes == 1
    assert [e["kind"] for e in dead.errors] == ["crash"]
    assert "abandoned" in dead.errors[0]["error"]

    second.signal(signal.SIGTERM)
    assert second.wait_exit() == 0
    assert ledger.pids("start", "once") == [first.pid], "an at-most-once job ran twice"
    assert count_in(app, "running") == 0


def test_a_paused_workers_late_completion_is_fenced_off(
    app: Offload, procs: Procs, ledger: Ledger
) -> None:
    procs.maintainer()
    paused = procs.worker(concurrency=1, maintenance=False, name="paused")
    job = app.enqueue("hold", key="job")
    ledger.wait_started("job")
    first_token = record(app, job.id).lease_token

    paused.signal(signal.SIGSTOP)
    wait_until(
        lambda: record(app, job.id).crashes == 1,
        what="the paused worker's job to be rescued once its lease expired",
    )
    rescuer = procs.worker(concurrency=1, maintenance=False, name="rescuer")
    ledger.wait_started("job", times=2)
    ledger.release("job")
    done = wait_until(state_is(app, job.id, "completed"))
    assert done.result == rescuer.pid
    assert done.lease_token != first_token
    stale = counter(app, "stale_acks")

    paused.signal(signal.SIGCONT)
    wait_until(
        lambda: counter(app, "stale_acks") == stale + 1,
        what="the resumed worker's completion to be counted stale",
        explain=lambda: f"counters: {app.store.counters()}",
    )
    after = record(app, job.id)
    assert (after.state, after.result, after.lease_token, after.finished_at, after.attempt) == (
        "completed",
        rescuer.pid,
        done.lease_token,
        done.finished_at,
        done.attempt,
    )
    assert ledger.pids("end", "job") == [rescuer.pid, paused.pid]

    # The resumed worker goes on working: with the rescuer gone, it runs the next job.
    rescuer.signal(signal.SIGTERM)
    assert rescuer.wait_exit() == 0
    assert paused.alive()
    following = app.enqueue("record", key="following")
    assert wait_until(state_is(app, following.id, "completed")).result == paused.pid
    paused.signal(signal.SIGTERM)
    assert paused.wait_exit() == 0


def test_a_job_that_kills_its_worker_every_time_ends_dead(
    app: Offload, procs: Procs, ledger: Ledger
) -> None:
    procs.maintainer()
    # The supervisor restarts the children the job kills. One job per child at a time, none
    # claimed ahead, so that the other jobs never share a process with the poison pill.
    supervisor = procs.worker(
        "--processes", "2", "--prefetch", "0", concurrency=1, maintenance=False, name="supervisor"
    )
    poison = app.enqueue("kill_own_worker", key="poison")
    others = [app.enqueue("record", key=f"other-{i}") for i in range(10)]

    dead = wait_until(state_is(app, poison.id, "dead"), timeout=60)
    max_crashes = app.config.max_crashes
    assert max_crashes == 3
    assert dead.crashes == max_crashes
    assert [e["kind"] for e in dead.errors] == ["crash"] * max_crashes
    assert all("worker lost" in e["error"] for e in dead.errors[:-1])
    assert "abandoned" in dead.errors[-1]["error"]
    assert ledger.count("start", "poison") == max_crashes
    for other in others:
        assert wait_until(state_is(app, other.id, "completed")).errors == []

    supervisor.signal(signal.SIGTERM)
    assert supervisor.wait_exit() == 0
    assert record(app, poison.id).state == "dead"
    assert ledger.count("start", "poison") == max_crashes, "a dead job was claimed again"
    assert count_in(app, "running") == 0
