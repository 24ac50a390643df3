"""B1, B2, B3, B6: PostgreSQL connections that die, hang or lose a COMMIT's answer; and the
cluster-wide duties (cron, the maintenance leader, a rolled-back enqueue) on several workers.

On a throwaway cluster (`_cluster.py`). Worker processes connect with an `application_name` of
their own, so that a test kills their connections and no one else's; B2 and B6 put a small TCP
proxy (`_proxy.py`) between offload and the server.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from offload import Offload
from tests.integration._harness import Procs, all_jobs, state_is, wait_until

from ._cluster import Cluster, cluster_fixture, cluster_store_url_fixture  # noqa: F401
from ._ledger import Ledger, check, record_figures
from ._proxy import proxy_to
from .faultapp import LEASE_SECONDS
from .pgapp import make_app

PGAPP = "tests.faults.pgapp:app"
LEADER_LOG = "took maintenance leadership"


@pytest.fixture
def store_url(cluster_store_url: str) -> str:
    return cluster_store_url


@pytest.fixture
def app(store_url: str) -> Iterator[Offload]:
    """The PostgreSQL fault app on a fresh, migrated schema."""
    application = make_app(store_url)
    application.store.migrate()
    yield application
    application.close()


@pytest.fixture
def tag() -> str:
    return f"offload-faults-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def procs(app: Offload, workdir: Path, tag: str) -> Iterator[Procs]:
    """Starts processes whose connections carry `tag` as their application_name."""
    started = Procs(f"{app.config.url}&application_name={tag}", workdir)
    yield started
    started.cleanup()


def backends(conn: psycopg.Connection[Any], tag: str, listening: bool | None = None) -> list[int]:
    """The pids of the server processes serving connections tagged `tag` (only those whose
    last statement was a LISTEN, or only the others)."""
    rows = conn.execute(
        "SELECT pid, query FROM pg_stat_activity WHERE application_name = %s "
        "AND pid <> pg_backend_pid()",
        [tag],
    ).fetchall()
    return [
        pid
        for pid, query in rows
        if listening is None or query.lstrip().upper().startswith("LISTEN") == listening
    ]


def terminate(conn: psycopg.Connection[Any], pids: list[int]) -> int:
    rows = conn.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [pids])
    return sum(1 for (killed,) in rows.fetchall() if killed)


def stop_all(*procs: Any) -> None:
    for proc in procs:
        proc.signal(signal.SIGTERM)
    for proc in procs:
        assert proc.wait_exit() == 0, proc.tail()


# --- B1 ---------------------------------------------------------------------------------------
KILL_JOBS = 1500
KILL_EVERY = 50  # completions between two rounds of kills
JOB_SECONDS = 0.02  # long enough for every slot to be busy when connections die


def test_b1_workers_whose_connections_are_killed_mid_job_reconnect_and_run_every_job_once(
    cluster: Cluster, app: Offload, procs: Procs, ledger: Ledger, tag: str
) -> None:
    keys = [f"k{i}" for i in range(KILL_JOBS)]
    work = app.job_type("work")
    for start in range(0, KILL_JOBS, 500):
        chunk = keys[start : start + 500]
        for key in chunk:
            ledger.note("invoke", key)
        jobs = app.enqueue_many(work.prepare(key=k, seconds=JOB_SECONDS) for k in chunk)
        for key, job in zip(chunk, jobs, strict=True):
            ledger.note("ok", key, job.id)
    workers = [procs.worker(concurrency=8, app=PGAPP, name=f"worker{i}") for i in range(2)]

    def ended() -> int:
        return len(ledger.keys("end"))

    killed = rounds = 0
    with cluster.connect() as conn:
        while (done := ended()) < KILL_JOBS:
            # Both workers connected (pool and listener): kill every connection of theirs, then
            # let them show progress before the next round, which proves that they reconnected.
            wait_until(
                lambda: len(backends(conn, tag)) >= 4 or ended() == KILL_JOBS,
                what="the workers to (re)connect",
                explain=procs.logs,
            )
            killed += terminate(conn, backends(conn, tag))
            rounds += 1
            wait_until(
                lambda d=done: ended() >= min(d + KILL_EVERY, KILL_JOBS),
                timeout=60,
                interval=0.01,
                what=f"progress past {done + KILL_EVERY} ended jobs after round {rounds}",
                explain=procs.logs,
            )
        assert all(w.alive() for w in workers), procs.logs()
    stop_all(*workers)
    assert rounds >= 5, "the drain ended before the kills did much"
    assert killed >= 2 * rounds
    verdict = check(ledger, app)
    verdict.assert_holds()  # each job ran exactly once: no lease ran out, no cycle was lost
    record_figures(
        "B1 pg_terminate_backend of workers' connections mid-job",
        "postgres",
        verdict,
        rounds=rounds,
        killed=killed,
    )


# --- B2 ---------------------------------------------------------------------------------------
AMBIGUOUS = 4


def test_b2_an_enqueue_whose_commit_answer_is_lost_is_an_unknown_outcome_and_a_retry_is_a_no_op(
    cluster: Cluster, app: Offload, procs: Procs, ledger: Ledger, store_url: str
) -> None:
    """The proxy lets a COMMIT reach the server and cuts the connection before its answer
    reaches the client. The enqueue raises StoreError ("may or may not have applied"), recorded
    `info`; the job was in fact stored and runs once (recovered), and a retry of it with its
    unique key returns the stored job instead of a second one."""
    worker = procs.worker(concurrency=2, app=PGAPP)
    with proxy_to("127.0.0.1", cluster.port) as proxy:
        url = store_url.replace(f"127.0.0.1:{cluster.port}", f"127.0.0.1:{proxy.port}")
        producer = make_app(url)
        try:
            ledger.enqueue(producer, "unique_work", "plain")  # opens the pool's connection
            for i in range(AMBIGUOUS):
                proxy.cut_after_commit()
                assert ledger.enqueue(producer, "unique_work", f"cut-{i}") is None
            assert proxy.commits_cut == AMBIGUOUS
            # A client that retries (the same unique key) gets the job that was stored.
            first = ledger.enqueue(producer, "unique_work", "cut-0")
            again = producer.enqueue("unique_work", key="cut-0")
            assert again.duplicate and again.id == first
        finally:
            producer.close()
    keys = {"plain", *(f"cut-{i}" for i in range(AMBIGUOUS))}
    wait_until(lambda: set(ledger.keys("end")) >= keys, what="every job to run", explain=procs.logs)
    stop_all(worker)
    verdict = check(ledger, app)
    verdict.assert_holds()
    assert verdict.recovered == {f"cut-{i}" for i in range(1, AMBIGUOUS)}
    assert [j.args["key"] for j in all_jobs(app)].count("cut-0") == 1
    record_figures("B2 ambiguous COMMIT during enqueue", "postgres", verdict)


# --- B3 ---------------------------------------------------------------------------------------
def test_b3_a_worker_whose_listen_connection_is_killed_listens_again_and_is_woken(
    cluster: Cluster, app: Offload, procs: Procs, ledger: Ledger, tag: str
) -> None:
    """With a poll of a minute, only notifications can start these jobs at once: they run, so
    the listener came back by itself after its connection was killed, twice."""
    worker = procs.worker("--poll-interval", "60", concurrency=4, app=PGAPP)
    worker.wait_log("running queues")
    with cluster.connect() as conn:
        for round_ in range(2):
            listening = wait_until(
                lambda: backends(conn, tag, listening=True), what="the LISTEN connection"
            )
            assert terminate(conn, listening) == 1
            wait_until(
                lambda r=round_: worker.log().count("listening for jobs again") > r,
                what="the listener to reconnect",
                explain=worker.tail,
            )
            keys = [f"r{round_}-{i}" for i in range(50)]
            for key in keys:
                ledger.enqueue(app, "work", key)
            wait_until(
                lambda k=keys: set(ledger.keys("end")) >= set(k),
                what="the jobs enqueued after the kill to run (woken, not polled)",
                explain=worker.tail,
            )
    stop_all(worker)
    assert worker.log().count("lost the LISTEN connection") == 2
    verdict = check(ledger, app)
    verdict.assert_holds()
    record_figures("B3 LISTEN connection killed", "postgres", verdict)


# --- B6 ---------------------------------------------------------------------------------------
FROZEN = 6.0  # seconds the proxy holds every connection open and silent
ANSWER_TIMEOUT = 2.0  # not less: on a loaded machine a live answer can take a second


def test_b6_half_open_connections_are_given_up_and_replaced_and_no_thread_hangs(
    cluster: Cluster, app: Offload, procs: Procs, ledger: Ledger, store_url: str
) -> None:
    """Every connection of a worker goes silent (the proxy stops forwarding, closes nothing)
    for three times its answer timeout: the worker gives them up, connects again (new
    connections pass), runs the jobs enqueued meanwhile, and stops cleanly on SIGTERM."""
    with proxy_to("127.0.0.1", cluster.port) as proxy:
        url = store_url.replace(f"127.0.0.1:{cluster.port}", f"127.0.0.1:{proxy.port}")
        proxied = Procs(f"{url}&answer_timeout={ANSWER_TIMEOUT:g}", procs.folder)
        try:
            worker = proxied.worker(concurrency=4, app=PGAPP)
            before = [f"before-{i}" for i in range(30)]
            for key in before:
                ledger.enqueue(app, "work", key, seconds=0.01)
            wait_until(lambda: set(ledger.keys("end")) >= set(before), explain=proxied.logs)
            frozen_at = time.monotonic_ns()
            assert proxy.freeze() >= 2  # the pool's and the listener's connections at least
            during = [f"during-{i}" for i in range(30)]
            for key in during:
                ledger.enqueue(app, "work", key, seconds=0.01)
            wait_until(
                lambda: worker.log().count("no answer from the server") >= 1,
                what="the worker to give up a silent connection",
                explain=worker.tail,
            )
            wait_until(
                lambda: set(ledger.keys("end")) >= set(during),
                what="the jobs enqueued while the old connections hang to run",
                explain=worker.tail,
            )
            wait_until(lambda: time.monotonic_ns() - frozen_at > FROZEN * 1e9, what="the freeze")
            proxy.thaw()
            thawed_at = time.monotonic_ns()
            worker.signal(signal.SIGTERM)
            assert worker.wait_exit(timeout=10) == 0, worker.tail()
        finally:
            proxied.cleanup()
    verdict = check(ledger, app)
    lease_ns = int(LEASE_SECONDS * 1e9)
    near = {
        k
        for k in verdict.duplicated
        if any(
            x.mono_ns >= frozen_at and x.mono_ns <= thawed_at + lease_ns
            for x in ledger.lines()
            if x.key == k
        )  # fmt: skip
    }
    assert verdict.duplicated == near
    verdict.assert_holds(max_duplicated=len(near))
    record_figures("B6 half-open connection", "postgres", verdict)


# --- B8 ---------------------------------------------------------------------------------------
WAVE = 150  # jobs per wave of churn


def _pickup_ms(app: Offload, keys: set[str]) -> list[float]:
    """Milliseconds from insert to first attempt of the jobs with these keys, sorted."""
    return sorted(
        (j.attempted_at - j.inserted_at) * 1000
        for j in all_jobs(app, kind="work")
        if j.args["key"] in keys and j.attempted_at is not None
    )


def _dead_rows(conn: psycopg.Connection[Any], schema: str) -> int:
    row = conn.execute(
        "SELECT n_dead_tup FROM pg_stat_user_tables WHERE schemaname = %s AND relname = %s",
        [schema, "offload_jobs"],
    ).fetchone()
    return int(row[0]) if row else 0


def test_b8_a_long_transaction_holding_back_vacuum_loses_nothing_and_its_age_shows(
    cluster: Cluster, app: Offload, procs: Procs, ledger: Ledger, store_url: str
) -> None:
    """A REPEATABLE READ transaction stays open while waves of jobs go through: every job
    runs, claims keep working, and the store reports the transaction's age. Pickup latency and
    dead rows are measured (recorded with the figures), not asserted."""
    from offload.store.postgres._engine import PostgresStore

    store = app.store
    assert isinstance(store, PostgresStore)
    worker = procs.worker(concurrency=4, app=PGAPP)
    worker.wait_log("running queues")

    def wave(name: str) -> set[str]:
        keys = {f"{name}-{i}" for i in range(WAVE)}
        for key in sorted(keys):
            ledger.enqueue(app, "work", key)
        wait_until(lambda: keys <= set(ledger.keys("end")), timeout=60, explain=worker.tail)
        return keys

    baseline = _pickup_ms(app, wave("baseline"))
    assert store.oldest_transaction_age() < 5  # nothing long-lived yet
    with cluster.connect(autocommit=False) as holder, cluster.connect() as admin:
        holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        holder.execute("SELECT count(*) FROM pg_class").fetchone()  # takes the snapshot
        began = time.monotonic()
        held: set[str] = set()
        for i in range(3):
            held |= wave(f"held{i}")
        age = store.oldest_transaction_age()
        assert age >= time.monotonic() - began - 0.5, (age, time.monotonic() - began)
        dead_held = _dead_rows(admin, store.schema)
        holder.rollback()
        admin.execute(f'VACUUM "{store.schema}".offload_jobs')
        after = _pickup_ms(app, wave("after"))
        assert store.oldest_transaction_age() < age
    worker.signal(signal.SIGTERM)
    assert worker.wait_exit() == 0, worker.tail()
    verdict = check(ledger, app)
    verdict.assert_holds()
    during = _pickup_ms(app, held)

    def p(ms: list[float], q: float) -> float:
        return round(ms[min(len(ms) - 1, int(q * len(ms)))], 1)

    record_figures(
        "B8 long transaction holding back vacuum",
        "postgres",
        verdict,
        oldest_transaction_s=round(age, 1),
        dead_rows_held=dead_held,
        pickup_p50_ms=[p(baseline, 0.5), p(during, 0.5), p(after, 0.5)],
        pickup_p99_ms=[p(baseline, 0.99), p(during, 0.99), p(after, 0.99)],
    )


# --- cluster-wide duties on several workers ---------------------------------------------------
def test_cron_fires_once_per_tick_with_four_worker_processes(app: Offload, procs: Procs) -> None:
    cron = {"OFFLOAD_TEST_CRON": "1"}
    workers = [procs.worker(concurrency=2, app=PGAPP, name=f"cron{i}", env=cron) for i in range(4)]

    def completed_ticks() -> int:
        return sum(1 for j in all_jobs(app, kind="tick") if j.state == "completed")

    wait_until(lambda: completed_ticks() >= 4, what="4 cron ticks to run", explain=procs.logs)
    stop_all(*workers)
    ticks = [j.meta["tick"] for j in all_jobs(app, kind="tick")]
    assert len(ticks) >= 4
    assert sorted(ticks) == sorted(set(ticks)), f"a tick fired twice: {sorted(ticks)}"
    assert all(t == int(t) for t in ticks), ticks
    assert any(LEADER_LOG in w.log() for w in workers)


def test_a_job_enqueued_in_a_rolled_back_transaction_never_runs_on_a_live_worker(
    cluster: Cluster, app: Offload, procs: Procs, ledger: Ledger
) -> None:
    worker = procs.worker(concurrency=2, app=PGAPP)
    worker.wait_log("running queues")
    work = app.job_type("work")
    with cluster.connect(autocommit=False) as conn:
        ledger.note("invoke", "rolled-back")
        rolled_back = work.options(connection=conn).enqueue(key="rolled-back")
        conn.rollback()
        ledger.note("fail", "rolled-back")
    with cluster.connect(autocommit=False) as conn:
        ledger.note("invoke", "marker")
        marker = work.options(connection=conn).enqueue(key="marker")
        conn.commit()
        ledger.note("ok", "marker", marker.id)
    wait_until(state_is(app, marker.id, "completed"), explain=procs.logs)
    stop_all(worker)
    # A job enqueued after the rolled-back one, on the same worker, ran: the rolled-back one
    # had every chance to run and did not.
    assert app.store.job_get(rolled_back.id) is None
    verdict = check(ledger, app)
    verdict.assert_holds()
    assert set(verdict.ended) == {"marker"}


@pytest.mark.slow  # a long fault run: CI time; run with -m slow
def test_another_worker_takes_over_maintenance_when_the_leader_is_killed(
    app: Offload, procs: Procs, ledger: Ledger
) -> None:
    cron = {"OFFLOAD_TEST_CRON": "1"}
    leader = procs.worker(concurrency=2, app=PGAPP, name="leader", env=cron)
    leader.wait_log(LEADER_LOG)
    others = [
        procs.worker(concurrency=2, app=PGAPP, name=f"follower{i}", env=cron) for i in range(2)
    ]
    for other in others:
        other.wait_log("running queues")
    wait_until(
        lambda: [j for j in all_jobs(app, kind="tick") if j.state == "completed"],
        what="a cron tick to run under the first leader",
    )
    leader.signal(signal.SIGKILL)
    leader.wait_exit()
    killed_at = app.store.now()
    # A job that only the promoter of a leader makes available.
    ledger.note("invoke", "scheduled")
    scheduled = app.job_type("work").options(delay=0.5).enqueue(key="scheduled")
    ledger.note("ok", "scheduled", scheduled.id)
    wait_until(
        lambda: any(LEADER_LOG in o.log() for o in others),
        what="a follower to take maintenance leadership",
        explain=procs.logs,
    )
    done = wait_until(state_is(app, scheduled.id, "completed"), explain=procs.logs)
    assert done.result in {o.pid for o in others}
    wait_until(
        lambda: any(
            j.meta["tick"] > killed_at and j.state == "completed"
            for j in all_jobs(app, kind="tick")
        ),
        what="a cron tick after the leader died to run",
        explain=procs.logs,
    )
    stop_all(*others)
    ticks = [j.meta["tick"] for j in all_jobs(app, kind="tick")]
    assert sorted(ticks) == sorted(set(ticks)), f"a tick fired twice: {sorted(ticks)}"
    verdict = check(ledger, app, kinds=["work"])
    verdict.assert_holds()
    record_figures("A: maintenance leader killed", "postgres", verdict)
