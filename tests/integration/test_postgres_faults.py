"""PostgreSQL under faults, with real worker processes (issue 3, capability 7 and its tests).

Workers' connections killed by `pg_terminate_backend`, the server restarted under load, four
workers on one database with cron, a rolled-back enqueue beside a running worker, and the
maintenance leader killed. PostgreSQL only: these tests fail (never skip) in CI when it is
missing. Worker processes connect with an `application_name` of their own, so that the test
kills their connections and no one else's.

The restart test restarts the local cluster with `pg_ctlcluster` (as root): the newest
version's `main`, or `$OFFLOAD_TEST_PG_CLUSTER` ("15/faults") when `$OFFLOAD_TEST_POSTGRES`
points at another one, e.g. a throwaway cluster that other users of the server won't miss.
It always leaves the server running. Since it cuts off everyone else using that server, it
runs in CI (`CI=true`) and, elsewhere, only with `OFFLOAD_TEST_PG_RESTART=1`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from offload import Offload
from tests._engines import PG_URL, drop_schema, make_url

from ._harness import Ledger, Procs, all_jobs, count_in, counts, record, state_is, wait_until
from .jobsapp import LEASE_SECONDS

LEADER_LOG = "took maintenance leadership"


@pytest.fixture
def store_url(tmp_path: Path) -> Iterator[str]:
    """PostgreSQL only (overrides the engine-parametrized fixture of the suite)."""
    url, schema = make_url("postgres", tmp_path)
    yield url
    assert schema is not None
    drop_schema(schema)


@pytest.fixture
def worker_tag() -> str:
    return f"offload-faults-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def procs(app: Offload, workdir: Path, worker_tag: str) -> Iterator[Procs]:
    """Starts processes whose connections carry `worker_tag` as their application_name."""
    started = Procs(f"{app.config.url}&application_name={worker_tag}", workdir)
    yield started
    started.cleanup()


def admin() -> psycopg.Connection[Any]:
    """A connection of the test's own, outside the store, for pg_stat_activity."""
    return psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)


def backends(conn: psycopg.Connection[Any], tag: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = %s",
        [tag],
    ).fetchone()
    return int(row[0]) if row else 0


def terminate(conn: psycopg.Connection[Any], tag: str) -> int:
    """Kill every connection of the processes tagged `tag`; how many were killed."""
    rows = conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND application_name = %s",
        [tag],
    ).fetchall()
    return sum(1 for (killed,) in rows if killed)


def stop_all(*procs: Any) -> None:
    for proc in procs:
        proc.signal(signal.SIGTERM)
    for proc in procs:
        assert proc.wait_exit() == 0, proc.tail()


# --- a. connections killed mid-run ----------------------------------------------------------
KILL_JOBS = 2000
KILL_EVERY = 100  # completions between two rounds of kills


def test_workers_whose_connections_are_killed_reconnect_and_run_every_job_once(
    app: Offload, procs: Procs, ledger: Ledger, worker_tag: str
) -> None:
    rec = app.job_type("record")
    for start in range(0, KILL_JOBS, 1000):
        app.enqueue_many(rec.prepare(key=str(i)) for i in range(start, start + 1000))
    workers = [procs.worker(concurrency=10, name=f"worker{i}") for i in range(2)]

    killed = rounds = 0
    with admin() as conn:
        while (done := count_in(app, "completed")) < KILL_JOBS:
            # Both workers connected (pool and listener): kill them all, then let the workers
            # show progress before the next round, which proves that they reconnected.
            wait_until(
                lambda: backends(conn, worker_tag) >= 4 or count_in(app, "completed") == KILL_JOBS,
                what="the workers to (re)connect",
                explain=procs.logs,
            )
            killed += terminate(conn, worker_tag)
            rounds += 1
            wait_until(
                lambda d=done: count_in(app, "completed") >= min(d + KILL_EVERY, KILL_JOBS),
                timeout=60,
                interval=0.01,
                what=f"progress past {done + KILL_EVERY} completions after round {rounds}",
                explain=lambda: f"{counts(app)}\n{procs.logs()}",
            )
        assert all(w.alive() for w in workers), procs.logs()
        wait_until(lambda: backends(conn, worker_tag) >= 2, what="the workers to reconnect")

    stop_all(*workers)
    print(f"\nkill rounds: {rounds}, connections killed: {killed}")
    assert rounds >= 5, "the drain ended before the kills did much"
    assert killed >= 2 * rounds
    assert counts(app) == {"completed": KILL_JOBS}
    runs = ledger.tally("run")
    assert len(runs) == KILL_JOBS
    twice = {k: n for k, n in runs.items() if n > 1}
    assert twice == {}, f"{len(twice)} jobs ran more than once, e.g. {list(twice.items())[:5]}"


# --- b. PostgreSQL restarted under load -----------------------------------------------------
def _cluster() -> tuple[str, str]:
    """The version and name of the local cluster that `$OFFLOAD_TEST_POSTGRES` points at, for
    pg_ctlcluster: `$OFFLOAD_TEST_PG_CLUSTER` ("15/main"), else the newest version's main."""
    in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    if not in_ci and os.environ.get("OFFLOAD_TEST_PG_RESTART") != "1":
        pytest.skip(
            "restarts the PostgreSQL server under everyone using it: set "
            "OFFLOAD_TEST_PG_RESTART=1 to run it here (CI always does)"
        )
    given = os.environ.get("OFFLOAD_TEST_PG_CLUSTER")
    if given:
        version, _, name = given.partition("/")
        return version, name or "main"
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if not versions or shutil.which("pg_ctlcluster") is None or os.geteuid() != 0:
        message = (
            "restarting PostgreSQL needs a local Debian cluster (pg_ctlcluster) and root; "
            "set OFFLOAD_TEST_PG_CLUSTER=VERSION/NAME to name it"
        )
        if in_ci:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return versions[-1], "main"


def _pg_ctl(action: str, *options: str) -> subprocess.CompletedProcess[str]:
    version, name = _cluster()
    return subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", *options, version, name, action],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _pg_ready() -> bool:
    where = conninfo_to_dict(PG_URL)
    argv = ["pg_isready", "-q", "-h", str(where.get("host", "127.0.0.1"))]
    argv += ["-p", str(where.get("port", 5432))]
    return subprocess.run(argv, check=False).returncode == 0


def _wait_pg_ready() -> None:
    wait_until(_pg_ready, timeout=60, what="PostgreSQL to accept connections again")


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


PRODUCERS = 3
PER_PHASE = 150  # acknowledged enqueues per producer before the restart, and again after it
ACROSS = 4  # jobs running while the server restarts


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["fast", "immediate", "outage"])
def test_a_restart_under_load_loses_no_acknowledged_job_and_leaves_none_running(
    app: Offload, procs: Procs, ledger: Ledger, workdir: Path, mode: str
) -> None:
    """`fast` disconnects every client and shuts down cleanly; `immediate` stops without a
    checkpoint, so the server recovers from its WAL when it starts again, as after a crash;
    `outage` stops the server for longer than a lease, so running jobs' leases expire."""
    _cluster()
    names = [f"p{i}" for i in range(PRODUCERS)]

    def acked(name: str) -> int:
        return len(_lines(workdir / f"acked-{name}"))

    workers = [procs.worker(concurrency=10, name=f"worker{i}") for i in range(2)]
    across = [app.enqueue("hold", key=f"across-{i}") for i in range(ACROSS)]
    producers = [
        procs.start(["-m", "tests.integration.steady_producer", n], name=f"producer-{n}")
        for n in names
    ]
    try:
        for job in across:
            ledger.wait_started(str(record(app, job.id).args["key"]))
        wait_until(
            lambda: all(acked(n) >= PER_PHASE for n in names),
            timeout=60,
            what=f"every producer to have {PER_PHASE} enqueues acknowledged",
            explain=procs.logs,
        )
        before = {n: acked(n) for n in names}
        if mode == "outage":
            stopped = _pg_ctl("stop", "--mode", "fast")
            assert stopped.returncode == 0, stopped.stderr
            # Nothing renews a lease while the server is down: let every lease run out.
            expired = time.time() + LEASE_SECONDS + 0.5
            wait_until(lambda: time.time() > expired, what="the leases to run out")
            started = _pg_ctl("start")
            assert started.returncode == 0, started.stderr
        else:
            restarted = _pg_ctl("restart", "--mode", mode)
            assert restarted.returncode == 0, restarted.stderr
        _wait_pg_ready()
        for i in range(ACROSS):
            ledger.release(f"across-{i}")
        wait_until(
            lambda: all(acked(n) >= before[n] + PER_PHASE for n in names),
            timeout=60,
            what="every producer to go on after the restart",
            explain=procs.logs,
        )
    finally:
        if not _pg_ready():
            _pg_ctl("start")
            _wait_pg_ready()
    (workdir / "stop").touch()
    for producer in producers:
        assert producer.wait_exit(timeout=60) == 0, producer.tail()

    acks = dict(line.split() for n in names for line in _lines(workdir / f"acked-{n}"))
    errors = [line for n in names for line in _lines(workdir / f"errors-{n}")]
    unclear = [e for e in errors if " offload._errors.StoreError: " not in e]
    assert unclear == [], f"enqueues that failed without a clear StoreError: {unclear[:5]}"
    assert len(set(acks.values())) == len(acks), "two acknowledged enqueues got the same id"

    # Every acknowledged job survived the restart, and every stored job completes (the ones
    # running when the server went away are rescued if their lease expired meanwhile).
    stored = {str(j.id) for j in all_jobs(app)}
    lost = sorted(set(acks.values()) - stored)
    assert lost == [], f"{len(lost)} acknowledged jobs are not in the store: {lost[:10]}"
    wait_until(
        lambda: counts(app) == {"completed": len(stored)},
        timeout=60,
        what=f"all {len(stored)} stored jobs to complete",
        explain=lambda: f"{counts(app)}\n{procs.logs()}",
    )
    stop_all(*workers)
    assert count_in(app, "running") == 0

    jobs = all_jobs(app, kind="record")
    keys = Counter(str(j.args["key"]) for j in jobs)
    runs = ledger.tally("run")
    assert set(acks) <= set(runs), "an acknowledged job never ran"
    unknown = [e.split()[0] for e in errors]
    held = [record(app, job.id) for job in across]
    print(
        f"\n[{mode}] acknowledged: {len(acks)} (before the restart: {sum(before.values())}), "
        f"raised (unknown outcome): {len(errors)} of which stored: "
        f"{sum(1 for k in unknown if k in keys)}, stored: {len(jobs)}, "
        f"enqueued twice: {sum(1 for n in keys.values() if n > 1)}, "
        f"ran more than once: {sum(1 for n in runs.values() if n > 1)}, lost: 0, "
        f"rescued: {sum(j.crashes for j in jobs)}; jobs running across the restart: "
        f"{[ledger.count('start', f'across-{i}') for i in range(ACROSS)]} starts, "
        f"{[h.crashes for h in held]} crashes"
    )
    if errors:
        print(f"e.g. {errors[0]}")


# --- c. four workers, one database, cron once per tick -------------------------------------
def test_cron_fires_once_per_tick_with_four_worker_processes(
    app: Offload, procs: Procs, ledger: Ledger
) -> None:
    workers = [
        procs.worker(concurrency=2, name=f"cron{i}", env={"OFFLOAD_TEST_CRON": "1"})
        for i in range(4)
    ]

    def completed_ticks() -> int:
        return sum(1 for j in all_jobs(app, kind="tick") if j.state == "completed")

    wait_until(lambda: completed_ticks() >= 4, what="4 cron ticks to run", explain=procs.logs)
    stop_all(*workers)

    jobs = all_jobs(app, kind="tick")
    ticks = [j.meta["tick"] for j in jobs]
    assert len(ticks) >= 4
    assert sorted(ticks) == sorted(set(ticks)), f"a tick fired twice: {sorted(ticks)}"
    assert all(t == int(t) for t in ticks), ticks
    completed = [j for j in jobs if j.state == "completed"]
    assert ledger.count("run", "tick") == len(completed)
    leaders = [w for w in workers if LEADER_LOG in w.log()]
    assert len(leaders) >= 1
    print(f"\ncron ticks fired: {len(ticks)}, ran: {len(completed)}, leaders: {leaders}")


# --- d. a rolled-back enqueue beside a running worker ---------------------------------------
def test_a_job_enqueued_in_a_rolled_back_transaction_never_runs_on_a_live_worker(
    app: Offload, procs: Procs, ledger: Ledger
) -> None:
    worker = procs.worker(concurrency=2)
    worker.wait_log("running queues")
    rec = app.job_type("record")

    with psycopg.connect(PG_URL) as conn:
        rolled_back = rec.options(connection=conn).enqueue(key="rolled-back")
        conn.rollback()
    with psycopg.connect(PG_URL) as conn:
        marker = rec.options(connection=conn).enqueue(key="marker")
        conn.commit()
    wait_until(state_is(app, marker.id, "completed"), explain=procs.logs)
    # A job enqueued after the rolled-back one, on the same worker, ran: the rolled-back one
    # had every chance to run and did not.
    assert ledger.count("run", "marker") == 1
    assert ledger.count("run", "rolled-back") == 0
    assert app.store.job_get(rolled_back.id) is None
    assert [j.id for j in all_jobs(app)] == [marker.id]
    stop_all(worker)


# --- e. the maintenance leader killed -------------------------------------------------------
def test_another_worker_takes_over_maintenance_when_the_leader_is_killed(
    app: Offload, procs: Procs, ledger: Ledger
) -> None:
    cron = {"OFFLOAD_TEST_CRON": "1"}
    leader = procs.worker(concurrency=2, name="leader", env=cron)
    leader.wait_log(LEADER_LOG)
    others = [procs.worker(concurrency=2, name=f"follower{i}", env=cron) for i in range(2)]
    for other in others:
        other.wait_log("running queues")
    first_tick = wait_until(
        lambda: [j for j in all_jobs(app, kind="tick") if j.state == "completed"],
        what="a cron tick to run under the first leader",
    )
    assert first_tick

    leader.signal(signal.SIGKILL)
    leader.wait_exit()
    killed_at = app.store.now()
    # A job that only the promoter of a leader makes available.
    scheduled = app.job_type("record").options(delay=0.5).enqueue(key="scheduled")
    assert record(app, scheduled.id).state == "scheduled"

    wait_until(
        lambda: any(LEADER_LOG in o.log() for o in others),
        timeout=30,
        what="a follower to take maintenance leadership",
        explain=procs.logs,
    )
    done = wait_until(state_is(app, scheduled.id, "completed"), timeout=30, explain=procs.logs)
    assert done.result in {o.pid for o in others}
    wait_until(
        lambda: any(
            j.meta["tick"] > killed_at and j.state == "completed"
            for j in all_jobs(app, kind="tick")
        ),
        timeout=30,
        what="a cron tick after the leader died to run",
        explain=procs.logs,
    )
    stop_all(*others)
    ticks = [j.meta["tick"] for j in all_jobs(app, kind="tick")]
    assert sorted(ticks) == sorted(set(ticks)), f"a tick fired twice: {sorted(ticks)}"
    new_leaders = [o.name for o in others if LEADER_LOG in o.log()]
    assert len(new_leaders) >= 1
    gap = [t for t in ticks if t > killed_at]
    print(f"\nnew leader(s): {new_leaders}; ticks after the kill: {len(gap)}")
    assert ledger.count("run", "scheduled") == 1
