"""B4, B5: PostgreSQL crash-restarted under load, and down for longer than a lease.

Both stop the server, so they run on a throwaway cluster of their own (`_cluster.py`), never on
the shared one. Workers are real processes (lease 2 s) of `tests.faults.faultapp:app` (B5) and
`tests.faults.pgapp:app` (B4, whose `default` queue is at-least-once only, so that its workers
commit their cycles asynchronously, the mode whose duplicates docs/postgres.md documents).
"""

from __future__ import annotations

import signal
import time

import pytest

from offload import Offload
from tests.integration._harness import Procs, all_jobs, wait_until

from ._cluster import Cluster, cluster_fixture, cluster_store_url_fixture  # noqa: F401
from ._ledger import Ledger, check, record_figures
from .faultapp import LEASE_SECONDS, make_app

APP = "tests.faults.faultapp:app"
PGAPP = "tests.faults.pgapp:app"
OUTAGE = 4 * LEASE_SECONDS  # long enough for every lease to run out, and for an exponential
# reconnect back-off (1 s, 2 s, 4 s ...) to have grown past the deadline below
BACK_WITHIN = 6.0  # seconds from the server answering to a new job run; the promise is ~2 s
GRACE = 2.0


@pytest.fixture
def store_url(cluster_store_url: str) -> str:
    return cluster_store_url


def _quiet(procs: Procs, name: str, text: str) -> int:
    return next(p for p in procs.started if p.name == name).log().count(text)


@pytest.mark.slow  # a long fault run: CI time; run with -m slow
def test_b5_a_worker_is_back_within_seconds_of_an_outage_longer_than_a_lease(
    cluster: Cluster, app: Offload, procs: Procs, ledger: Ledger, store_url: str
) -> None:
    """After an outage of four leases, a job enqueued once the server answers again runs within
    seconds (no reconnect back-off grown to many seconds), a SIGTERM during the outage stops a
    worker within its grace, jobs running across the outage are rescued and run again
    (at-least-once), and nothing is lost."""
    worker = procs.worker(concurrency=4, app=APP, name="stays")
    leaving = procs.worker("--grace", str(GRACE), concurrency=2, app=APP, name="leaves")
    before = [f"before-{i}" for i in range(20)]
    for key in before:
        ledger.enqueue(app, "work", key)
    wait_until(lambda: set(ledger.keys("end")) >= set(before), what="the first jobs to end")
    across = [f"across-{i}" for i in range(2)]
    for key in across:
        ledger.enqueue(app, "held", key)
    wait_until(lambda: set(ledger.keys("start")) >= set(across), what="the held jobs to start")

    cluster.stop("fast")
    down_at = time.monotonic()
    leaving.signal(signal.SIGTERM)
    code = leaving.wait_exit(timeout=GRACE + 3)
    assert code == 0, leaving.tail()
    wait_until(lambda: time.monotonic() - down_at > OUTAGE, timeout=OUTAGE + 5, what="the outage")
    cluster.start()
    for key in across:
        (ledger.folder / f"release-{key}").touch()

    # A producer of its own, so that only the worker's reconnect is measured.
    producer = make_app(store_url)
    try:
        ledger.enqueue(producer, "work", "after")
        wait_until(
            lambda: ledger.keys("end")["after"],
            timeout=BACK_WITHIN,
            what="a job enqueued after the outage to run",
            explain=procs.logs,
        )
        after = [f"after-{i}" for i in range(20)]
        for key in after:
            ledger.enqueue(producer, "work", key)
    finally:
        producer.close()
    wait_until(
        lambda: set(ledger.keys("end")) >= {*after, *across},
        timeout=30,
        what="every job to end",
        explain=procs.logs,
    )
    worker.signal(signal.SIGTERM)
    assert worker.wait_exit() == 0, worker.tail()
    verdict = check(ledger, app)
    # Held jobs lost their lease during the outage: rescued, they may run again.
    verdict.assert_holds(max_duplicated=len(across))
    assert verdict.duplicated <= set(across)
    assert _quiet(procs, "stays", "claim failed") <= 2, "the worker logged every failed claim"
    record_figures("B5 database down longer than a lease", "postgres", verdict)


# --- B4 ---------------------------------------------------------------------------------------
RESTARTS = 3
PER_PHASE = 150  # acknowledged enqueues between two restarts (and after the last)


def _acked(ledger: Ledger) -> int:
    return sum(1 for x in ledger.lines() if x.event == "ok")


def _first_runs(ledger: Ledger) -> dict[str, tuple[int, int]]:
    """Each key's first run: (monotonic ns of its first start, of the first end after it)."""
    runs: dict[str, tuple[int, int]] = {}
    starts: dict[str, int] = {}
    for x in ledger.lines():
        if x.event == "start" and x.key not in starts:
            starts[x.key] = x.mono_ns
        elif x.event == "end" and x.key in starts and x.key not in runs:
            runs[x.key] = (starts[x.key], x.mono_ns)
    return runs


@pytest.mark.parametrize("mode", ["immediate"])
def test_b4_crash_restarts_under_load_lose_nothing_and_duplicate_only_around_a_restart(
    cluster: Cluster, app: Offload, procs: Procs, ledger: Ledger, mode: str
) -> None:
    """Producers and workers run while the server is crash-restarted (`immediate`: no
    checkpoint, WAL recovery at start) three times. Every acknowledged enqueue runs (NL), nothing
    unexpected runs (NU), no at-most-once job starts twice (AMO), nothing stays running, and a
    job runs twice only if its first run overlapped a restart's window: from 3 x
    wal_writer_delay before the crash (worker cycles that asynchronous commit may lose, as
    docs/postgres.md says) to a lease after the server was back (a lost claim's run, then
    acknowledged as stale)."""
    with cluster.connect() as conn:
        row = conn.execute(
            "SELECT setting::float / 1000 FROM pg_settings WHERE name = 'wal_writer_delay'"
        ).fetchone()
    assert row is not None
    lost_window = 3 * float(row[0])
    workers = [procs.worker(concurrency=4, app=PGAPP, name=f"worker{i}") for i in range(2)]
    once = procs.worker(queues="once", concurrency=2, app=PGAPP, name="once")
    argv = ["-m", "tests.faults.producer"]
    producers = [procs.start([*argv, f"p{i}"], name=f"p{i}") for i in range(2)]
    producers.append(procs.start([*argv, "o0", "work_once"], name="o0"))

    windows: list[tuple[int, int]] = []
    for i in range(RESTARTS):
        wait_until(
            lambda i=i: _acked(ledger) >= (i + 1) * PER_PHASE,
            timeout=60,
            what=f"{(i + 1) * PER_PHASE} acknowledged enqueues",
            explain=procs.logs,
        )
        before = time.monotonic_ns()
        cluster.restart(mode)
        wait_until(cluster.ready, what="the server to answer again")
        windows.append((before, time.monotonic_ns()))
    wait_until(
        lambda: _acked(ledger) >= (RESTARTS + 1) * PER_PHASE,
        timeout=60,
        what="enqueues to go on after the last restart",
        explain=procs.logs,
    )
    (ledger.folder / "stop").touch()
    for producer in producers:
        assert producer.wait_exit(timeout=60) == 0, producer.tail()
    acknowledged = {x.key for x in ledger.lines() if x.event == "ok"}
    wait_until(
        lambda: acknowledged <= set(ledger.keys("end")),
        timeout=60,
        what="every acknowledged job to run",
        explain=procs.logs,
    )
    for worker in [*workers, once]:
        worker.signal(signal.SIGTERM)
    for worker in [*workers, once]:
        assert worker.wait_exit() == 0, worker.tail()

    verdict = check(ledger, app)
    runs = _first_runs(ledger)
    lease_ns = int(LEASE_SECONDS * 1e9)
    window_ns = int(lost_window * 1e9)

    def near_a_restart(key: str) -> bool:
        start, end = runs[key]
        return any(start <= after + lease_ns and end >= before - window_ns
                   for before, after in windows)  # fmt: skip

    allowed = {k for k in verdict.duplicated if near_a_restart(k)}
    assert verdict.duplicated == allowed, sorted(verdict.duplicated - allowed)[:10]
    once_keys = {k for k in verdict.attempted if k.startswith("o0-")}
    verdict.assert_holds(max_duplicated=len(allowed), at_most_once=once_keys)
    stored = [j.args["key"] for j in all_jobs(app)]
    assert len(stored) == len(set(stored)), "a key was stored twice"
    assert set(stored) <= verdict.attempted
    infos = sum(1 for x in ledger.lines() if x.event == "info")
    record_figures(
        "B4 crash-restart under load", "postgres", verdict, restarts=RESTARTS, unknown=infos
    )
