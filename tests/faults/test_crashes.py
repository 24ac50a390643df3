"""Worker processes that crash, freeze, run out of memory or lose their supervisor (catalogue
A1-A8), for real: SIGKILL, SIGSTOP, crash points in the worker's cycle (crashapp.py) and the
kernel's memory limits. Each test checks the ledger against the store (`_ledger.check`) and
records its figures for docs/reliability.md."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from offload import Offload
from tests._wait import eventually
from tests.integration._harness import (
    Procs,
    all_jobs,
    count_in,
    counter,
    descendants,
    record,
    state_is,
    wait_until,
)

from ._ledger import Ledger, check, record_figures
from ._procs import kill, wait_gone
from .crashapp import make_app

APP = "tests.faults.crashapp:app"
UNFINISHED = ("scheduled", "available", "running", "retryable")


@pytest.fixture
def app(store_url: str) -> Iterator[Offload]:
    """The crash tests' app on a fresh, migrated store."""
    application = make_app(store_url)
    application.store.migrate()
    yield application
    application.close()


def maintainer(procs: Procs) -> None:
    """A worker of an unused queue that holds maintenance leadership (rescues), so that the
    workers a test kills never hold it."""
    procs.worker(queues="maintenance-only", concurrency=1, name="maintainer", app=APP)


def unfinished(app: Offload) -> int:
    return sum(c.count for c in app.store.job_counts() if c.state in UNFINISHED)


def drained(app: Offload) -> None:
    wait_until(
        lambda: unfinished(app) == 0,
        timeout=90,
        what="every job to reach a final state",
        explain=lambda: f"counts: {app.store.job_counts()}",
    )


def release(procs: Procs, *keys: str) -> None:
    """Let `held` jobs with these keys end (faultapp.hold)."""
    for key in keys:
        (procs.folder / f"release-{key}").touch()


def start_recorded(app: Offload, job_id: int) -> bool:
    """Whether the store has recorded that the running job started (it is charged a crash if
    its worker is lost): its held_token no longer names the current claim."""
    store: object = app.store
    sql = (
        "SELECT state = 'running' AND (held_token IS NULL OR held_token <> lease_token) "
        "FROM {}offload_jobs WHERE id = "
    )
    if app.store.engine == "sqlite":
        with sqlite3.connect(store.path) as conn:  # type: ignore[attr-defined]
            row = conn.execute(sql.format("") + "?", (job_id,)).fetchone()
    else:
        schema = f'"{store.schema}".'  # type: ignore[attr-defined]
        with psycopg.connect(store.conninfo) as pg:  # type: ignore[attr-defined]
            row = pg.execute(sql.format(schema) + "%s", (job_id,)).fetchone()
    return bool(row and row[0])


# --- A1: kill -9 of a worker mid-job ------------------------------------------------------
def test_a1_a_killed_workers_jobs_run_again_or_end_abandoned_when_at_most_once(
    app: Offload, procs: Procs, ledger: Ledger, engine: str
) -> None:
    maintainer(procs)
    first = procs.worker(concurrency=2, maintenance=False, name="killed", app=APP)
    again = ledger.enqueue(app, "held", "again")
    once = ledger.enqueue(app, "held_once", "once")
    assert again is not None and once is not None
    wait_until(
        lambda: start_recorded(app, again) and start_recorded(app, once),
        what="both jobs' starts to be recorded",
    )

    first.signal(signal.SIGKILL)
    first.wait_exit()
    lost = record(app, again)
    assert lost.state == record(app, once).state == "running"
    assert lost.lease_expires_at is not None
    release(procs, "again", "once")
    second = procs.worker(concurrency=2, maintenance=False, name="successor", app=APP)

    done = wait_until(state_is(app, again, "completed"))
    dead = wait_until(state_is(app, once, "dead"))
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
    assert [(e["kind"], e["error"]) for e in dead.errors] == [("crash", "abandoned")]
    assert ledger.pids("start", "once") == [first.pid], "an at-most-once job ran twice"
    assert count_in(app, "running") == 0

    verdict = check(ledger, app, succeeds=lambda key: key != "once")
    verdict.assert_holds(at_most_once=["once"])
    assert verdict.restarted == {"again"}
    record_figures("A1 kill -9 of a worker mid-job", engine, verdict)


# --- A2: crash after the job's code, before its acknowledgement ------------------------------
@pytest.mark.parametrize("kind", ["finish_then_crash", "finish_then_crash_once"])
def test_a2_a_crash_before_the_acknowledgement(
    app: Offload, procs: Procs, ledger: Ledger, engine: str, kind: str
) -> None:
    maintainer(procs)
    job_id = ledger.enqueue(app, kind, "job")
    assert job_id is not None
    crashed = procs.worker(
        concurrency=1, maintenance=False, name="crashed", app=APP, env={"CRASH_BEFORE_ACK": "1"}
    )
    assert crashed.wait_exit() == -signal.SIGKILL
    assert ledger.keys("end")["job"] == 1
    assert record(app, job_id).state == "running"  # the store never heard of the end
    procs.worker(concurrency=1, maintenance=False, name="successor", app=APP)
    drained(app)

    job = record(app, job_id)
    if kind.endswith("_once"):  # it may have had effects: never run twice
        assert (job.state, job.crashes) == ("dead", 1)
        assert job.errors[-1]["error"] == "abandoned"
        verdict = check(ledger, app)
        verdict.assert_holds(at_most_once=["job"])
        assert ledger.keys("start")["job"] == 1
    else:  # run again: a duplicate that at-least-once allows
        assert (job.state, job.attempt) == ("completed", 1)
        verdict = check(ledger, app)
        verdict.assert_holds(max_duplicated=1)
        assert verdict.duplicated == {"job"}
    record_figures(f"A2 crash before the acknowledgement ({kind})", engine, verdict)


# --- A3: crash between the claim and the first start ---------------------------------------
def test_a3_a_crash_right_after_a_batch_claim_charges_no_job(
    app: Offload, procs: Procs, ledger: Ledger, engine: str
) -> None:
    maintainer(procs)
    ids = [ledger.enqueue(app, "work", f"job-{i}") for i in range(10)]
    crashed = procs.worker(
        concurrency=10, maintenance=False, name="crashed", app=APP, env={"CRASH_AFTER_CLAIM": "1"}
    )
    assert crashed.wait_exit() == -signal.SIGKILL
    claimed = [record(app, i) for i in ids if i is not None]
    assert [j.state for j in claimed] == ["running"] * 10  # one claim took them all
    assert ledger.keys("start") == {}
    procs.worker(concurrency=4, maintenance=False, name="successor", app=APP)
    drained(app)

    for job in all_jobs(app):
        # Claimed twice, one attempt counted: the lost claim's attempt was given back, and no
        # crash is charged to a job that never started.
        assert (job.state, job.attempt, job.crashes, job.errors) == ("completed", 1, 0, [])
    verdict = check(ledger, app)
    verdict.assert_holds(max_restarted=0)
    record_figures("A3 crash right after a claim of 10", engine, verdict)


# --- A4: zombie worker (SIGSTOP past its lease) ---------------------------------------------
def test_a4_a_paused_workers_late_completion_is_fenced_off(
    app: Offload, procs: Procs, ledger: Ledger, engine: str
) -> None:
    maintainer(procs)
    paused = procs.worker(concurrency=1, maintenance=False, name="paused", app=APP)
    job_id = ledger.enqueue(app, "held", "job")
    assert job_id is not None
    wait_until(lambda: start_recorded(app, job_id), what="the job's start to be recorded")
    first_token = record(app, job_id).lease_token

    paused.signal(signal.SIGSTOP)
    wait_until(
        lambda: record(app, job_id).crashes == 1,
        what="the paused worker's job to be rescued once its lease expired",
    )
    rescuer = procs.worker(concurrency=1, maintenance=False, name="rescuer", app=APP)
    wait_until(lambda: ledger.keys("start")["job"] == 2, what="the job to start again")
    release(procs, "job")
    done = wait_until(state_is(app, job_id, "completed"))
    assert done.result == rescuer.pid
    assert done.lease_token != first_token
    stale = counter(app, "stale_acks")

    paused.signal(signal.SIGCONT)
    wait_until(
        lambda: counter(app, "stale_acks") == stale + 1,
        what="the resumed worker's completion to be counted stale",
        explain=lambda: f"counters: {app.store.counters()}",
    )
    after = record(app, job_id)
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
    following = ledger.enqueue(app, "work", "following")
    assert following is not None
    assert wait_until(state_is(app, following, "completed")).result == paused.pid
    paused.signal(signal.SIGTERM)
    assert paused.wait_exit() == 0
    verdict = check(ledger, app)
    # Both runs of the job ended: the zombie's is the duplicate handlers must be idempotent for.
    verdict.assert_holds(max_duplicated=1)
    record_figures("A4 zombie worker (SIGSTOP past the lease)", engine, verdict)


# --- A5: a pause shorter than the lease, and a long job that heartbeats ----------------------
@pytest.mark.slow  # a long fault run: CI time; run with -m slow
def test_a5_a_short_pause_and_a_long_job_are_not_rescued(
    app: Offload, procs: Procs, ledger: Ledger, engine: str
) -> None:
    maintainer(procs)
    worker = procs.worker(concurrency=2, maintenance=False, name="worker", app=APP)
    job_id = ledger.enqueue(app, "held", "long")
    assert job_id is not None
    wait_until(lambda: start_recorded(app, job_id), what="the job's start to be recorded")
    began = record(app, job_id)
    assert began.attempted_at is not None and began.lease_expires_at is not None

    worker.signal(signal.SIGSTOP)
    time.sleep(app.config.lease_seconds / 2)  # the fault: a pause of half a lease
    worker.signal(signal.SIGCONT)
    # The job runs on past two leases, kept by heartbeats of its current token.
    deadline = began.attempted_at + 2 * app.config.lease_seconds
    wait_until(lambda: app.store.now() > deadline, timeout=30, what="two leases to pass")
    assert record(app, job_id).lease_expires_at > began.lease_expires_at  # type: ignore[operator]
    release(procs, "long")
    done = wait_until(state_is(app, job_id, "completed"))
    assert (done.attempt, done.crashes, done.errors, done.lease_token) == (
        1,
        0,
        [],
        began.lease_token,
    )
    assert counter(app, "rescued") == 0
    worker.signal(signal.SIGTERM)
    assert worker.wait_exit() == 0
    verdict = check(ledger, app)
    verdict.assert_holds(max_restarted=0)
    record_figures("A5 short pause, and a job running 2 leases", engine, verdict)


# --- A6: graceful and forced shutdown (also in CI: tests/integration/test_shutdown.py) -------
@pytest.mark.slow
def test_a6_sigterm_finishes_short_jobs_puts_long_ones_back_and_a_second_stops_at_once(
    app: Offload, procs: Procs, ledger: Ledger, engine: str
) -> None:
    maintainer(procs)
    worker = procs.worker(
        "--grace", "1", concurrency=2, maintenance=False, name="graceful", app=APP
    )
    short = ledger.enqueue(app, "held", "short")
    long = ledger.enqueue(app, "held", "long")
    assert short is not None and long is not None
    wait_until(lambda: len(ledger.keys("start")) == 2, what="both jobs to start")
    worker.signal(signal.SIGTERM)
    worker.wait_log("SIGTERM received")
    release(procs, "short")
    assert worker.wait_exit(timeout=10) == 0
    assert record(app, short).state == "completed"
    back = record(app, long)
    assert (back.state, back.attempt, back.crashes, back.errors) == ("available", 0, 0, [])

    forced = procs.worker(concurrency=2, maintenance=False, name="forced", app=APP)
    wait_until(lambda: ledger.keys("start")["long"] == 2, what="the long job to start again")
    forced.signal(signal.SIGTERM)
    forced.wait_log("SIGTERM received")
    forced.signal(signal.SIGINT)
    assert forced.wait_exit(timeout=10) == 1
    again = record(app, long)
    assert (again.state, again.attempt, again.crashes) == ("available", 0, 0)  # at once

    release(procs, "long")
    procs.worker(concurrency=2, maintenance=False, name="successor", app=APP)
    drained(app)
    verdict = check(ledger, app)
    verdict.assert_holds(max_duplicated=0)
    assert verdict.restarted == {"long"}
    record_figures("A6 graceful and forced shutdown", engine, verdict)


# --- A7: a job that kills its worker every time ----------------------------------------------
@pytest.mark.slow  # a long fault run: CI time; run with -m slow
def test_a7_a_job_that_kills_its_worker_every_time_ends_dead_alone(
    app: Offload, procs: Procs, ledger: Ledger, engine: str
) -> None:
    maintainer(procs)
    poison = ledger.enqueue(app, "poison", "pill")
    for i in range(60):
        ledger.enqueue(app, "work", f"job-{i}", seconds=0.02)
    # The default prefetch: neighbours share the pill's process, running or claimed ahead.
    supervisor = procs.worker(
        "--processes", "2", concurrency=4, maintenance=False, name="supervisor", app=APP
    )
    drained(app)
    dead = record(app, poison)  # type: ignore[arg-type]
    max_crashes = app.config.max_crashes
    assert (dead.state, dead.crashes) == ("dead", max_crashes)
    assert [e["kind"] for e in dead.errors] == ["crash"] * max_crashes
    assert all("worker lost" in e["error"] for e in dead.errors[:-1])
    assert "lost 3 times" in dead.errors[-1]["error"]
    # Its first run may have crashed before its start was recorded: then uncharged.
    assert max_crashes <= ledger.keys("start")["pill"] <= max_crashes + 1
    assert counter(app, "abandoned") == 1
    starts = ledger.keys("start")
    for job in all_jobs(app, "work"):
        assert job.state == "completed", job
        assert job.crashes <= min(starts[job.args["key"]] - 1, 1), job

    supervisor.signal(signal.SIGTERM)
    assert supervisor.wait_exit() == 0
    assert ledger.keys("start")["pill"] == starts["pill"], "a dead job was claimed again"
    verdict = check(ledger, app, succeeds=lambda key: key != "pill")
    verdict.assert_holds(max_duplicated=len(verdict.restarted))
    record_figures("A7 poison pill among 60 jobs, prefetch on", engine, verdict)


# --- item 2: a crash is charged only to jobs that had started ------------------------------
@pytest.mark.slow
def test_poison_pills_among_many_jobs_take_no_innocent_job_with_them(
    app: Offload, procs: Procs, ledger: Ledger, engine: str
) -> None:
    maintainer(procs)
    pills = {100, 450, 800}
    for i in range(1000):
        if i in pills:
            ledger.enqueue(app, "poison", f"pill-{i}")
        else:
            ledger.enqueue(app, "work", f"job-{i}")
    # Claims ahead of free slots (the default prefetch): the pills' neighbours held in the
    # dying process's buffer never started.
    procs.worker("--processes", "2", concurrency=4, maintenance=False, name="supervisor", app=APP)
    drained(app)

    max_crashes = app.config.max_crashes
    starts = ledger.keys("start")
    for job in all_jobs(app):
        key = job.args["key"]
        # A crash is charged only to a job that had started in the process that died: each
        # crash stands for a start of its own, and a completed job's last start did not crash.
        ran = starts[key] - (1 if job.state == "completed" else 0)
        assert job.crashes <= ran, (key, job.crashes, starts[key], job.state)
        if key.startswith("pill"):
            assert (job.state, job.crashes) == ("dead", max_crashes), key
            assert "worker was lost 3 times" in job.errors[-1]["error"]
        else:
            assert job.state == "completed", (key, job.state, job.errors)
            assert job.crashes <= 1, key  # once charged, it runs alone: no neighbour kills it
    verdict = check(ledger, app, succeeds=lambda key: not key.startswith("pill"))
    verdict.assert_holds(max_duplicated=len(verdict.restarted))
    record_figures("A7 poison pills among 1,000 jobs, prefetch on", engine, verdict)


def test_a_killed_worker_abandons_only_the_at_most_once_jobs_that_had_started(
    app: Offload, procs: Procs, ledger: Ledger, engine: str
) -> None:
    maintainer(procs)
    held = [f"held-{i}" for i in range(4)]
    for key in held:  # they take the victim's 4 slots and run until it is killed
        ledger.enqueue(app, "held_once", key)
    for i in range(100):
        kind = "work_once" if i % 2 else "work"
        ledger.enqueue(app, kind, f"{kind}-{i}")
    victim = procs.worker(concurrency=4, maintenance=False, name="victim", app=APP)
    wait_until(
        lambda: all(ledger.keys("start")[key] for key in held), what="the held jobs to start"
    )
    victim.signal(signal.SIGKILL)
    victim.wait_exit()
    for key in held:
        (procs.folder / f"release-{key}").touch()
    procs.worker(concurrency=4, maintenance=False, name="successor", app=APP)
    drained(app)

    starts = ledger.keys("start")
    at_most_once = [j for j in all_jobs(app) if j.delivery == "at_most_once"]
    abandoned = sorted(j.args["key"] for j in at_most_once if j.state == "dead")
    # Only the jobs that ran when the process died: none was claimed ahead of a free slot.
    assert abandoned == held
    assert all(starts[key] == 1 for key in held)
    for job in all_jobs(app):
        assert job.crashes == (1 if job.args["key"] in held else 0), job
    verdict = check(ledger, app, succeeds=lambda key: key not in held)
    verdict.assert_holds(at_most_once=[j.args["key"] for j in at_most_once])
    record_figures("item 2: SIGKILL among at-most-once jobs", engine, verdict)


@pytest.mark.slow  # a long fault run: CI time; run with -m slow
def test_a_busy_worker_hands_an_isolated_job_back_to_an_idle_one(
    app: Offload, procs: Procs, ledger: Ledger, engine: str
) -> None:
    maintainer(procs)
    # A job held by a lost worker, never started: back uncharged, isolated from then on.
    iso = ledger.enqueue(app, "side_work", "iso")
    assert iso is not None
    lost = procs.worker(
        queues="side",
        concurrency=1,
        maintenance=False,
        name="lost",
        app=APP,
        env={"CRASH_AFTER_CLAIM": "1"},
    )
    lost.wait_exit()
    ledger.enqueue(app, "held", "long")
    busy = procs.worker(
        queues="default,side", concurrency=2, maintenance=False, name="busy", app=APP
    )
    wait_until(lambda: ledger.keys("start")["long"] == 1, what="the long job to start")
    # Rescued once its lease expires, the isolated job goes to the busy worker's free slot.
    wait_until(
        lambda: (r := record(app, iso)).state == "running" and str(busy.pid) in r.lease_owner,
        what="the busy worker to claim the isolated job",
    )
    assert record(app, iso).crashes == 0
    # It waits for the long job to end, alone: the busy worker's other slot stays free.
    assert ledger.keys("start")["iso"] == 0
    idle = procs.worker(queues="side", concurrency=1, maintenance=False, name="idle", app=APP)
    done = wait_until(state_is(app, iso, "completed"), what="the isolated job to be handed over")
    assert done.result == idle.pid
    assert (done.attempt, done.crashes) == (1, 0)
    busy.wait_log("handed isolated jobs")
    assert ledger.pids("start", "iso") == [idle.pid]
    release(procs, "long")
    drained(app)
    verdict = check(ledger, app)
    verdict.assert_holds(max_restarted=0)
    record_figures("isolated job handed from a busy worker to an idle one", engine, verdict)


# --- item 3 and A8 (b): the supervisor's death ---------------------------------------------
def test_killing_the_supervisor_stops_its_workers(
    app: Offload, procs: Procs, ledger: Ledger, engine: str, request: pytest.FixtureRequest
) -> None:
    supervisor = procs.worker(
        "--processes", "2", "--grace", "1", concurrency=2, name="supervisor", app=APP
    )
    for key in ("held-a", "held-b"):
        ledger.enqueue(app, "held", key)
    wait_until(lambda: len(ledger.keys("start")) == 2, what="both held jobs to start")
    children = descendants(supervisor.pid)
    assert len(children) == 2, children
    request.addfinalizer(lambda: kill(children))  # orphans escape the harness's clean-up

    supervisor.signal(signal.SIGKILL)
    supervisor.wait_exit()
    wait_gone(children, timeout=10)  # grace 1 s, then the held jobs are put back
    gone = time.monotonic_ns()
    assert app.store.worker_list(60) == [], "a child did not deregister: it did not stop cleanly"
    assert count_in(app, "running") == 0
    for job in all_jobs(app):
        assert (job.state, job.attempt, job.crashes) == ("available", 0, 0), job

    later = ledger.enqueue(app, "work", "later")
    assert later is not None
    assert record(app, later).state == "available"
    assert [x for x in ledger.lines() if x.event == "start" and x.mono_ns > gone] == []
    for key in ("held-a", "held-b"):
        (procs.folder / f"release-{key}").touch()
    procs.worker(concurrency=2, name="successor", app=APP)
    wait_until(state_is(app, later, "completed"))
    drained(app)
    verdict = check(ledger, app)
    verdict.assert_holds(max_duplicated=0)
    record_figures("A8 (b) supervisor killed", engine, verdict)


# --- A8 (a): out of memory ----------------------------------------------------------------
def test_a8_a_job_that_runs_out_of_address_space_fails_with_memory_error(
    app: Offload, procs: Procs, ledger: Ledger, engine: str
) -> None:
    maintainer(procs)
    hog = ledger.enqueue(app, "hog", "hog", megabytes=4096)
    for i in range(10):
        ledger.enqueue(app, "work", f"job-{i}")
    capped = procs.worker(
        concurrency=2,
        maintenance=False,
        name="capped",
        app=APP,
        env={"CRASH_ADDRESS_SPACE_MB": "1024"},  # RLIMIT_AS of the worker process
    )
    drained(app)

    dead = record(app, hog)  # type: ignore[arg-type]
    assert (dead.state, dead.attempt, dead.crashes) == ("dead", 2, 0)
    assert [e["kind"] for e in dead.errors] == ["error", "error"]
    assert all(e["error"].startswith("MemoryError") for e in dead.errors), dead.errors
    assert all(j.state == "completed" for j in all_jobs(app, "work"))
    assert capped.alive()  # the worker survived its job's failed allocation
    capped.signal(signal.SIGTERM)
    assert capped.wait_exit() == 0
    verdict = check(ledger, app, succeeds=lambda key: key != "hog")
    verdict.assert_holds(max_restarted=1)
    assert verdict.restarted <= {"hog"}
    record_figures("A8 (a) job past RLIMIT_AS: MemoryError", engine, verdict)


@pytest.fixture
def memory_cgroup() -> Iterator[Path]:
    """A cgroup of its own with a 400 MB memory limit (v1 or v2), removed afterwards; the test
    is skipped where this process may not make one (not root, no memory controller)."""
    limit = str(400 * 2**20)
    v1 = Path("/sys/fs/cgroup/memory")
    v2 = Path("/sys/fs/cgroup")
    if (v1 / "memory.limit_in_bytes").exists():
        base, knob = v1, "memory.limit_in_bytes"
    elif "memory" in _read(v2 / "cgroup.subtree_control"):
        base, knob = v2, "memory.max"
    else:
        pytest.skip("no memory cgroup controller to limit a worker with")
    group = base / f"offload-test-{os.getpid()}-{time.monotonic_ns()}"
    try:
        group.mkdir()
        (group / knob).write_text(limit)
    except OSError as exc:
        pytest.skip(f"cannot make a memory cgroup here ({exc})")
    try:
        yield group
    finally:

        def emptied() -> bool:
            pids = [int(p) for p in _read(group / "cgroup.procs").split()]
            kill(pids)
            return not pids

        eventually(emptied, timeout=10, what=f"the processes of {group} to be gone")
        group.rmdir()


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


@pytest.mark.slow
def test_a8_a_worker_killed_for_memory_is_replaced_and_its_job_stopped(
    app: Offload, procs: Procs, ledger: Ledger, engine: str, memory_cgroup: Path
) -> None:
    maintainer(procs)
    supervisor = procs.worker(
        "--processes", "2", concurrency=2, maintenance=False, name="supervisor", app=APP
    )
    wait_until(lambda: len(app.store.worker_list(60)) == 3, what="both children to register")
    first = descendants(supervisor.pid)
    for pid in [supervisor.pid, *first]:  # children started later inherit the cgroup
        (memory_cgroup / "cgroup.procs").write_text(str(pid))
    hog = ledger.enqueue(app, "hog", "hog", megabytes=1024)
    for i in range(20):
        ledger.enqueue(app, "work", f"job-{i}", seconds=0.05)
    drained(app)

    dead = record(app, hog)  # type: ignore[arg-type]
    max_crashes = app.config.max_crashes
    # The kernel's OOM killer took the process (SIGKILL) each time: crashes, not attempts.
    assert (dead.state, dead.crashes) == ("dead", max_crashes)
    assert [e["kind"] for e in dead.errors] == ["crash"] * max_crashes
    assert "exited with -9" in supervisor.log()
    assert all(j.state == "completed" for j in all_jobs(app, "work"))
    wait_until(  # the process the last kill took may still wait for its restart
        lambda: (
            len(children := descendants(supervisor.pid)) == 2 and not set(children) & set(first)
        ),
        what="the supervisor to replace its killed children",
    )
    supervisor.signal(signal.SIGTERM)
    assert supervisor.wait_exit() == 0
    verdict = check(ledger, app, succeeds=lambda key: key != "hog")
    verdict.assert_holds(max_duplicated=len(verdict.restarted))
    record_figures("A8 (a) worker killed by the OOM killer", engine, verdict)
