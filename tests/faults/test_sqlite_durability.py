"""Catalogue C3: a SQLite store under SIGKILL, with its write-ahead log removed, and the
durability settings each connection really runs with.

(a) Producers and a worker are killed with SIGKILL while they write, round after round: every
time the file passes `PRAGMA integrity_check` and holds every acknowledged job; afterwards a
worker runs them all (at least once). SQLite's rule: a committed transaction survives a crash of
the process whatever the `synchronous` setting. (b) The `-wal` file deleted while everything is
stopped: a worker says what that threw away and runs, instead of crash-looping. (c) Every
connection of a worker's store and of a producer's reads back `journal_mode=wal` and the
`synchronous` level of the URL (NORMAL by default, FULL with `?synchronous=full`).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from offload import Offload
from offload._states import FINAL_STATES
from offload.store._contract import JobFilter
from offload.store.sqlite import SQLiteStore
from offload.store.sqlite._errors import lost_wal_pages
from tests.integration._harness import Proc, Procs, wait_until

from ._files import integrity_check
from ._ledger import Ledger, check, record_figures
from .conftest import APP
from .sqliteapp import make_app as settings_app
from .sqliteapp import settings

KILL_ROUNDS = int(os.environ.get("OFFLOAD_TEST_KILL_ROUNDS", "2"))
CONCURRENCY = 4
HELD = 5 * CONCURRENCY  # jobs a worker holds: its slots and the jobs it claimed ahead


@pytest.fixture
def store_url(sqlite_url: str) -> str:
    """SQLite only (overrides the suite's engine-parametrized fixture)."""
    return sqlite_url


def producer(procs: Procs, name: str, count: int = 1_000_000, seconds: float = 0.0) -> Proc:
    return procs.start(
        ["-m", "tests.faults.count_producer", name, str(count), str(seconds)],
        name=f"producer-{name}",
    )


def stored_ids(path: str) -> set[int]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT id FROM offload_jobs")}
    finally:
        conn.close()


class Progress:
    """The ledger read as it grows, from where the last read stopped (a hundred rounds write
    hundreds of thousands of lines: reading them all at every poll would take minutes)."""

    def __init__(self, ledger: Ledger) -> None:
        self.path = ledger.path
        self.offset = 0
        self.ok: dict[str, int] = {}  # key -> job id
        self.ended: set[str] = set()

    def read(self) -> Progress:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return self
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line being written is read next time
        self.offset += len(complete)
        for line in complete.decode().splitlines():
            parts = line.split()
            if parts[0] == "ok":
                self.ok[parts[1]] = int(parts[4])
            elif parts[0] == "end":
                self.ended.add(parts[1])
        return self


def crashed_out(app: Offload, progress: Progress) -> set[str]:
    """Acknowledged keys whose job is dead for having been running in `max_crashes` killed
    workers (and for nothing else)."""
    ids = {job_id: key for key, job_id in progress.ok.items()}
    out = set()
    for job in app.store.job_list(JobFilter(states=["dead"], limit=100_000)):
        if job.id in ids:
            assert job.crashes >= app.config.max_crashes, job
            assert job.errors[-1]["kind"] == "crash", job.errors
            out.add(ids[job.id])
    return out


def unfinished(app: Offload) -> int:
    return sum(c.count for c in app.store.job_counts() if c.state not in FINAL_STATES)


def kill_rounds(app: Offload, procs: Procs, ledger: Ledger, workdir: Path, rounds: int) -> None:
    """SIGKILL two producers and a worker mid-write `rounds` times, checking the file after
    each round; then drain with a worker and check the ledger."""
    rng = random.Random(rounds)
    path = SQLiteStore(app.config.url).path
    app.close()  # the test holds no connection while they run
    (workdir / "go").touch()
    progress = Progress(ledger)
    for r in range(rounds):
        ok, ended = len(progress.read().ok), len(progress.ended)
        running = [producer(procs, f"r{r}p{i}", count=500, seconds=0.01) for i in range(2)]
        running.append(
            procs.worker(concurrency=CONCURRENCY, maintenance=r % 2 == 0, app=APP, name=f"w{r}")
        )
        wait_until(
            lambda ok=ok, ended=ended: (
                len(progress.read().ok) >= ok + 30 and len(progress.ended) >= ended + 10
            ),
            timeout=60,
            what=f"round {r}: producers and the worker to be writing",
            explain=procs.logs,
        )
        time.sleep(rng.uniform(0, 0.05))  # not a wait for anything: where the kill lands
        for proc in rng.sample(running, len(running)):
            proc.signal(signal.SIGKILL)
        for proc in running:
            proc.wait_exit()
        assert integrity_check(Path(path)) == "ok", f"round {r}"
        missing = set(progress.read().ok.values()) - stored_ids(path)
        assert not missing, f"round {r}: acknowledged jobs missing: {sorted(missing)[:10]}"

    drain = procs.worker(concurrency=4 * CONCURRENCY, app=APP, name="drain")

    def settled() -> bool:
        if unfinished(app):
            return False
        return progress.read().ended | crashed_out(app, progress) >= set(progress.ok)

    wait_until(
        settled,
        timeout=60 + 5 * rounds,
        what="every acknowledged job to end",
        explain=drain.tail,
    )
    drain.signal(signal.SIGTERM)
    assert drain.wait_exit() == 0, drain.tail()
    # A job whose worker was killed under it `max_crashes` times ends dead by design (the
    # poison-pill rule); only many rounds get there. Any other acknowledged job must end.
    dead = crashed_out(app, progress)
    verdict = check(ledger, app, succeeds=lambda key: key not in dead)
    # At least once: a job that ended in a killed worker before its acknowledgement committed
    # runs again (at most the jobs that worker held, per round).
    verdict.assert_holds(max_duplicated=rounds * HELD)
    assert integrity_check(Path(path)) == "ok"
    record_figures(
        f"C3a SIGKILL mid-write, {rounds} rounds",
        "sqlite",
        verdict,
        rounds=rounds,
        dead_after_max_crashes=len(dead),
    )


@pytest.mark.slow  # a long fault run: CI time; run with -m slow
def test_sigkill_of_producers_and_workers_mid_write_loses_nothing_acknowledged(
    app: Offload, procs: Procs, ledger: Ledger, workdir: Path
) -> None:
    kill_rounds(app, procs, ledger, workdir, KILL_ROUNDS)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_hundred_rounds_of_sigkill_mid_write_lose_nothing_acknowledged(
    app: Offload, procs: Procs, ledger: Ledger, workdir: Path
) -> None:
    kill_rounds(app, procs, ledger, workdir, 100)


def test_a_removed_write_ahead_log_is_reported_and_the_worker_runs(
    app: Offload, procs: Procs, ledger: Ledger, workdir: Path
) -> None:
    ledger.enqueue(app, "work", "before")  # committed and copied into the file below
    app.close()
    path = SQLiteStore(app.config.url).path
    (workdir / "go").touch()
    for round in range(10):
        # A producer killed mid-write leaves committed pages in the log, unless an automatic
        # checkpoint had just copied them all into the file: then kill another one.
        writer = producer(procs, f"p{round}")
        done = len(ledger.keys("ok"))
        wait_until(lambda: len(ledger.keys("ok")) >= done + 50, explain=writer.tail)
        writer.signal(signal.SIGKILL)
        writer.wait_exit()
        assert os.path.exists(f"{path}-wal") and os.path.exists(f"{path}-shm")
        os.rename(f"{path}-wal", f"{path}-wal.kept")
        if lost_wal_pages(path):
            break
        os.rename(f"{path}-wal.kept", f"{path}-wal")
    else:
        pytest.fail("every killed producer left its log checkpointed")
    os.remove(f"{path}-wal.kept")  # what an operator cleaning "temporary files" might do

    worker = procs.worker(concurrency=2, app=APP)
    worker.wait_log("running queues")
    log = worker.log()
    assert f"the write-ahead log of {path} ({path}-wal) is missing" in log, worker.tail()
    assert "committed pages that were not yet copied into the file are lost" in log
    wait_until(lambda: ledger.keys("end")["before"] == 1, what="the job kept in the file to run")
    worker.signal(signal.SIGTERM)
    assert worker.wait_exit() == 0, worker.tail()
    assert "Traceback" not in worker.log()
    assert integrity_check(Path(path)) == "ok"


@pytest.mark.parametrize("synchronous", [None, "normal", "full"])
def test_every_connection_runs_with_the_configured_durability(
    synchronous: str | None, sqlite_url: str, procs: Procs
) -> None:
    url = sqlite_url if synchronous is None else f"{sqlite_url}?synchronous={synchronous}"
    level = {None: 1, "normal": 1, "full": 2}[synchronous]  # NORMAL is offload's default
    producer_app = settings_app(url)
    try:
        job = producer_app.enqueue("read_settings")
        assert settings(producer_app.store) == [["wal", level]]
        worker = procs.start(
            ["-m", "offload", "worker", "tests.faults.sqliteapp:app", "--url", url], name="worker"
        )
        seen = job.result(timeout=30)
        worker.signal(signal.SIGTERM)
        assert worker.wait_exit() == 0, worker.tail()
    finally:
        producer_app.close()
    assert len(seen) >= 2, seen  # the worker's loop, heartbeat and maintenance threads
    assert all(row == ["wal", level] for row in seen), seen
