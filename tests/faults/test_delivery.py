"""Delivery semantics under concurrency and kills (catalogue E1-E7), checked with the ledger.

- E1: many worker processes on one backlog run every job exactly once.
- E2: a job enqueued in the caller's transaction is invisible and never runs until the caller
  commits, and never runs if it rolls back.
- E3: a failing job's attempts, errors and backoff; one out of attempts ends dead after
  exactly `max_attempts` starts.
- E4: at-most-once jobs under repeated SIGKILLs of their worker never start twice, and every
  one of them ends: completed, or dead ("abandoned") when a kill cut it short.
- E5: eight processes enqueue the same unique keys at once: one job per key, the same id for
  every caller, no raw integrity error.
- E6: a per-group FIFO mutex (`Limit(..., concurrency=1, fifo=True)`) across two workers, one
  of them killed: a group's jobs never overlap and start in enqueue order.
- E7: cancels and discards racing with a worker: a job ends cancelled or completed, never both;
  a running job cannot be retried.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

import pytest

from offload import Offload
from tests.integration._harness import Proc, Procs, all_jobs, counter, counts, record, wait_until

from ._ledger import Ledger, check, record_figures
from .deliveryapp import RETRY_BACKOFF, make_app

DELIVERY_APP = "tests.faults.deliveryapp:app"


@pytest.fixture
def app(store_url: str) -> Iterator[Offload]:
    """The delivery tests' app (overrides the fault app of conftest.py)."""
    application = make_app(store_url, v2=False)
    application.store.migrate()
    yield application
    application.close()


def _worker(procs: Procs, *options: str, name: str = "worker", **kw: Any) -> Proc:
    return procs.worker(*options, name=name, app=DELIVERY_APP, **kw)


def _drained(app: Offload, kinds: list[str], procs: Procs, timeout: float = 60) -> None:
    """Wait until no job of `kinds` is left unfinished."""
    wait_until(
        lambda: (
            not any(
                j.state not in ("completed", "dead", "cancelled", "shed")
                for kind in kinds
                for j in all_jobs(app, kind=kind)
            )
        ),
        timeout=timeout,
        what=f"every {'/'.join(kinds)} job to finish",
        explain=lambda: f"{counts(app)}\n{procs.logs()}",
    )


def _stop(*workers: Proc) -> None:
    """Stop drained workers for good (graceful shutdown is tests/integration/test_shutdown.py's
    subject; nothing of theirs is left to put back)."""
    for worker in workers:
        worker.signal(signal.SIGKILL)
    for worker in workers:
        worker.wait_exit()


# --- E1 -------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_eight_workers_run_a_hundred_thousand_jobs_exactly_once(
    app: Offload, procs: Procs, ledger: Ledger, engine: str
) -> None:
    jobs = 100_000
    keys = [f"job-{i}" for i in range(jobs)]
    for first in range(0, jobs, 5000):
        assert ledger.enqueue_many(app, "work", keys[first : first + 5000]) is not None
    workers = [_worker(procs, concurrency=10, name=f"worker{i}") for i in range(8)]
    wait_until(
        lambda: counts(app) == {"completed": jobs},
        timeout=900,
        what=f"{jobs} jobs to complete",
        explain=lambda: f"{counts(app)}\n{procs.logs()}",
        interval=0.5,
    )
    _stop(*workers)
    verdict = check(ledger, app)
    verdict.assert_holds(max_restarted=0)  # X1: one start and one end each
    record_figures("E1 8 workers, exactly once", engine, verdict, workers=8)


# --- E2 -------------------------------------------------------------------------------------
def _caller_connection(app: Offload) -> Any:
    """A connection of the application's own to the store's database, no transaction yet."""
    store = app.store
    if store.engine == "sqlite":
        return sqlite3.connect(store.path, isolation_level=None)  # type: ignore[attr-defined]
    import psycopg

    parts = urlparse(store.url)
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "schema"])
    return psycopg.connect(urlunparse(parts._replace(query=query)))


def _enqueue_in(app: Offload, ledger: Ledger, conn: Any, key: str) -> int:
    """Enqueue `key` in the caller's open transaction; acknowledged only by its commit."""
    ledger.note("invoke", key)
    if app.store.engine == "sqlite":
        conn.execute("BEGIN IMMEDIATE")
    return app.call("work", connection=conn).enqueue(key=key).id


def test_a_job_enqueued_in_a_transaction_runs_only_once_it_commits(
    app: Offload, procs: Procs, ledger: Ledger, engine: str
) -> None:
    worker = _worker(procs, concurrency=2)
    worker.wait_log("running queues")
    hold = 1.0  # seconds the caller keeps its transaction open
    ledger.enqueue(app, "work", "before")  # the queue's first job: see "meanwhile" below
    wait_until(lambda: ledger.pids("end", "before"), what="a first job to run")

    conn = _caller_connection(app)
    try:
        held = _enqueue_in(app, ledger, conn, "held")
        assert app.store.job_get(held) is None, "visible before the caller committed"
        if engine == "postgres":
            # Work goes on meanwhile; on SQLite the caller's write lock holds every writer.
            # Of another type: until the caller commits, its enqueue holds the row of the
            # type's fair-queuing flow (and of the queue's, had it been the queue's first
            # job), and other enqueues of that type wait for it (docs/reliability.md).
            ledger.enqueue(app, "unique_work", "meanwhile")
            wait_until(lambda: ledger.pids("end", "meanwhile"), what="work to go on meanwhile")
        until = time.monotonic() + hold
        wait_until(lambda: time.monotonic() >= until, what="the caller to hold its transaction")
        assert ledger.pids("start", "held") == [], "ran before the caller committed"
        conn.commit()
        ledger.note("ok", "held", held)

        _enqueue_in(app, ledger, conn, "rolled-back")
        conn.rollback()
        ledger.note("fail", "rolled-back")
    finally:
        conn.close()
    wait_until(lambda: ledger.pids("end", "held"), what="the committed job to run")
    ledger.enqueue(app, "work", "after")  # enqueued after the rollback, on the same worker
    wait_until(lambda: ledger.pids("end", "after"), what="a later job to run")
    _drained(app, ["work", "unique_work"], procs)
    _stop(worker)

    assert "rolled-back" not in {j.args["key"] for j in all_jobs(app)}  # its id may be reused
    assert ledger.pids("start", "rolled-back") == [], "a rolled-back job ran"
    verdict = check(ledger, app)
    verdict.assert_holds(max_restarted=0)
    record_figures("E2 transactional enqueue", engine, verdict)


# --- E3 -------------------------------------------------------------------------------------
def test_retries_follow_their_backoff_and_stop_at_max_attempts(
    app: Offload, procs: Procs, ledger: Ledger, engine: str
) -> None:
    worker = _worker(procs, concurrency=2)
    ledger.enqueue(app, "flaky", "flaky", failures=3)
    ledger.enqueue(app, "always_fails", "always")
    _drained(app, ["flaky", "always_fails"], procs)
    ledger.enqueue(app, "work", "marker")  # a dead job must not run again meanwhile
    wait_until(lambda: ledger.pids("end", "marker"), what="a later job to run")
    _drained(app, ["work"], procs)
    _stop(worker)

    [flaky] = all_jobs(app, kind="flaky")
    assert (flaky.state, flaky.attempt, flaky.result) == ("completed", 4, 4)
    assert [(e["attempt"], e["kind"]) for e in flaky.errors] == [(n, "error") for n in (1, 2, 3)]
    starts = ledger.times("start", "flaky")
    assert len(starts) == 4
    low = 1 - RETRY_BACKOFF.jitter
    for attempt, (before, after) in enumerate(zip(starts, starts[1:]), start=1):
        least = RETRY_BACKOFF.base * RETRY_BACKOFF.factor ** (attempt - 1) * low
        assert after - before >= least, f"retry {attempt} came after {after - before:.2f}s"

    [always] = all_jobs(app, kind="always_fails")
    assert (always.state, always.attempt, len(always.errors)) == ("dead", 5, 5)
    assert len(ledger.pids("start", "always")) == 5, "a dead job ran again"
    verdict = check(ledger, app, succeeds=lambda key: key != "always")
    verdict.assert_holds(max_restarted=2)  # flaky and always start again by design
    record_figures("E3 retries and backoff", engine, verdict)


# --- E4 -------------------------------------------------------------------------------------
def _at_most_once_under_kills(
    app: Offload, procs: Procs, ledger: Ledger, engine: str, jobs: int, kills: int
) -> None:
    rng = random.Random(4)
    procs.maintainer()  # rescues what the killed workers held
    keys = [f"once-{i}" for i in range(jobs)]
    for key in keys:
        ledger.enqueue(app, "work_once", key, seconds=round(rng.uniform(0.05, 0.5), 3))
    worker = _worker(procs, "--prefetch", "0", concurrency=4, maintenance=False)
    killed: list[int] = []

    def pending() -> int:
        return sum(1 for j in all_jobs(app, kind="work_once") if j.state == "available")

    for _ in range(kills):
        if not pending():
            break  # nothing left to cut short
        ended = len(ledger.keys("end"))
        wait_until(
            lambda e=ended: len(ledger.keys("end")) > e or not pending(),
            what="progress before a kill",
            explain=procs.logs,
        )
        until = time.monotonic() + rng.uniform(0.0, 0.6)  # a random point of a random job
        wait_until(lambda u=until: time.monotonic() >= u, what="the moment of the kill")
        worker.signal(signal.SIGKILL)
        worker.wait_exit()
        killed.append(worker.pid)
        worker = _worker(procs, "--prefetch", "0", concurrency=4, maintenance=False)
    _drained(app, ["work_once"], procs, timeout=120)
    _stop(worker, *[p for p in procs.started if p.name == "maintainer"])

    cut_short = {x.key for x in ledger.lines() if x.event == "start" and x.pid in killed}
    # A worker records an at-most-once job's start in the store before the job's first line
    # runs, so a kill in between gives up a job that never reached that line: at-most-once
    # allows it to run zero times. Only the jobs whose start a killed worker's last cycle
    # recorded can be caught so: at most its 4 slots' worth per kill.
    jobs_now = all_jobs(app, kind="work_once")
    unreached = {
        j.args["key"]
        for j in jobs_now
        if j.state == "dead" and j.args["key"] not in cut_short and j.errors
    }
    assert len(unreached) <= 4 * len(killed), f"{sorted(unreached)} ended dead without starting"
    verdict = check(ledger, app, succeeds=lambda key: key not in cut_short | unreached)
    verdict.assert_holds(at_most_once=keys, max_restarted=0)
    abandoned = 0
    for job in jobs_now:
        key = job.args["key"]
        if job.state == "dead":
            assert key in cut_short | unreached, f"{key} ended dead without having started"
            assert "abandoned" in job.errors[-1]["error"], job.errors
            abandoned += 1
        else:
            assert job.state == "completed", job
    record_figures(
        f"E4 at-most-once under {kills} kills",
        engine,
        verdict,
        abandoned=abandoned,
        kills=len(killed),
    )


def test_at_most_once_jobs_never_start_twice_under_kills(
    app: Offload, procs: Procs, ledger: Ledger, engine: str
) -> None:
    _at_most_once_under_kills(app, procs, ledger, engine, jobs=40, kills=3)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_at_most_once_jobs_never_start_twice_under_many_kills(
    app: Offload, procs: Procs, ledger: Ledger, engine: str
) -> None:
    _at_most_once_under_kills(app, procs, ledger, engine, jobs=1000, kills=40)


# --- E5 -------------------------------------------------------------------------------------
def test_eight_processes_racing_on_unique_keys_make_one_job_each(
    app: Offload, procs: Procs, ledger: Ledger, workdir: Path, engine: str
) -> None:
    racers, rounds = 8, 50
    names = [f"r{i}" for i in range(racers)]
    started = [
        procs.start(["-m", "tests.faults._racer", n, str(rounds)], name=f"racer-{n}") for n in names
    ]
    wait_until(
        lambda: all((workdir / f"ready-{n}").exists() for n in names),
        timeout=60,
        what="every racer to be ready",
        explain=procs.logs,
    )
    (workdir / "go").touch()
    for racer in started:
        assert racer.wait_exit(timeout=120) == 0, racer.tail()
    errors = [line for n in names for line in (workdir / f"errors-{n}").read_text().splitlines()]
    assert errors == [], errors[:3]
    outcomes: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for n in names:
        for line in (workdir / f"results-{n}").read_text().splitlines():
            key, job_id, outcome = line.split()
            outcomes[key].append((int(job_id), outcome))
    assert len(outcomes) == 2 * rounds
    for key, calls in outcomes.items():
        assert len(calls) == racers
        assert len({job_id for job_id, _ in calls}) == 1, f"{key}: {calls}"
        assert [o for _, o in calls].count("created") == 1, f"{key}: {calls}"
    rows = defaultdict(list)
    for job in all_jobs(app):
        rows[job.args["key"]].append(job.id)
    assert {k: len(v) for k, v in rows.items()} == dict.fromkeys(outcomes, 1)

    worker = _worker(procs, concurrency=8)
    _drained(app, ["work", "unique_work"], procs)
    _stop(worker)
    # Once done, a policy-unique key is free again; a strict unique_key never is.
    again = app.call("unique_work").enqueue(key="policy-0")
    same = app.call("work", unique_key="strict-0").enqueue(key="strict-0")
    assert not again.duplicate and again.id != rows["policy-0"][0]
    assert same.duplicate and same.id == rows["strict-0"][0]
    assert app.store.job_cancel(again.id)

    verdict = check(ledger, app)
    verdict.assert_holds(max_restarted=0)
    record_figures(f"E5 {racers} processes racing on unique keys", engine, verdict)


# --- E6 -------------------------------------------------------------------------------------
def test_a_groups_jobs_never_overlap_and_keep_their_order_when_a_worker_dies(
    app: Offload, procs: Procs, ledger: Ledger, engine: str
) -> None:
    groups, per_group = 6, 8
    procs.maintainer()
    order: dict[int, list[str]] = defaultdict(list)
    for i in range(per_group):
        for g in range(groups):
            key = f"g{g}-{i}"
            order[g].append(key)
            ledger.enqueue(app, "grouped", key, group=g, seconds=0.05)
    victim = _worker(procs, concurrency=4, maintenance=False, name="victim")
    other = _worker(procs, concurrency=4, maintenance=False, name="other")
    wait_until(lambda: len(ledger.keys("end")) >= 12, what="some groups to make progress")
    killed_at = time.monotonic()
    victim.signal(signal.SIGKILL)
    victim.wait_exit()
    _drained(app, ["grouped"], procs, timeout=90)
    _stop(other, *[p for p in procs.started if p.name == "maintainer"])

    lines = [x for x in ledger.lines() if x.event in ("start", "end")]
    for g in range(groups):
        runs: list[tuple[str, float, float]] = []  # key, start, end (or the kill)
        for x in sorted((x for x in lines if x.key.startswith(f"g{g}-")), key=lambda x: x.mono_ns):
            if x.event == "start":
                runs.append((x.key, x.mono_ns / 1e9, killed_at if x.pid == victim.pid else 0.0))
            else:
                key, start, _ = runs[-1]
                assert key == x.key, f"group {g}: {x.key} ended while {key} ran"
                runs[-1] = (key, start, x.mono_ns / 1e9)
        for (_, _, end), (key, start, _) in zip(runs, runs[1:]):
            assert start >= end, f"group {g}: {key} started before the previous job ended"
        firsts = list(dict.fromkeys(key for key, _, _ in runs))
        assert firsts == order[g], f"group {g} ran out of order: {firsts}"
        again = [key for key, _, _ in runs]
        assert again == sorted(again, key=order[g].index), f"group {g}: {again}"
    # A job the victim ran to its end, but had not acknowledged yet when it was killed, runs
    # again (at-least-once): only such jobs may end twice.
    overlapped = {x.key for x in lines if x.event == "start" and x.pid == victim.pid}
    verdict = check(ledger, app)
    assert verdict.duplicated <= overlapped, verdict.duplicated - overlapped
    verdict.assert_holds(max_duplicated=len(overlapped))
    record_figures("E6 per-group FIFO with a worker killed", engine, verdict, groups=groups)


# --- E7 -------------------------------------------------------------------------------------
def test_cancels_and_discards_racing_with_a_worker_leave_one_outcome(
    app: Offload, procs: Procs, ledger: Ledger, engine: str
) -> None:
    rng = random.Random(7)
    jobs = 300
    ids = {}
    for i in range(jobs):
        key = f"job-{i}"
        job_id = ledger.enqueue(app, "work", key, seconds=round(rng.uniform(0, 0.02), 3))
        assert job_id is not None
        ids[key] = job_id
    # Held jobs are running for sure while an admin tries to retry them.
    ledger.enqueue(app, "held", "held-0")
    worker = _worker(procs, concurrency=4)
    wait_until(lambda: ledger.pids("start", "held-0"), what="the held job to start")
    held = next(j for j in all_jobs(app, kind="held"))
    assert app.store.job_retry(held.id) is False, "a running job was retried"
    assert app.store.job_cancel(held.id) is False, "a running job was cancelled"
    (ledger.folder / "release-held-0").touch()

    cancelled: set[str] = set()
    discarded: set[str] = set()
    errors: list[BaseException] = []
    stale_before = counter(app, "stale_acks")

    def meddle() -> None:
        try:
            for key in rng.sample(sorted(ids), 150):
                if rng.random() < 0.7:
                    if app.store.job_cancel(ids[key]):
                        cancelled.add(key)
                elif app.store.job_discard(ids[key]):
                    discarded.add(key)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    admin = threading.Thread(target=meddle)
    admin.start()
    admin.join(120)
    assert errors == [], errors
    _drained(app, ["work", "held"], procs)
    _stop(worker)

    for key in cancelled:
        assert ledger.pids("start", key) == [], f"{key} ran although cancelled"
        assert record(app, ids[key]).state == "cancelled"
    for key in set(ids) - cancelled - discarded:
        assert record(app, ids[key]).state == "completed"
        assert len(ledger.pids("end", key)) == 1
    for key in discarded:
        assert app.store.job_get(ids[key]) is None
    fenced = counter(app, "stale_acks") - stale_before
    verdict = check(ledger, app, succeeds=lambda key: key not in cancelled | discarded)
    verdict.assert_holds(max_restarted=0)
    record_figures(
        "E7 cancels and discards racing with a worker",
        engine,
        verdict,
        cancelled=len(cancelled),
        discarded=len(discarded),
        fenced=fenced,
    )
