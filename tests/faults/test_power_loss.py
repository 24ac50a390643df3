"""Catalogue C5: power loss, simulated by copying the file and its write-ahead log at random
moments while producers and a worker write (`_files.snapshot`), then opening the copy.

With `?synchronous=full` every enqueue is on disk before it returns, so the copy must pass
`PRAGMA integrity_check` and hold every job whose enqueue returned before the copy began.
The copy reads what the processes wrote, synced or not, so it stands for the power loss that
keeps every write: it checks that no moment of offload's writing leaves a file that cannot be
recovered or that lacks an acknowledged job. It cannot show what a real power loss adds, the
loss of writes not yet synced: with the default `synchronous=normal` that is the last
transactions committed before it (docs/sqlite.md), never a damaged file.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from offload.store.sqlite import SQLiteStore
from tests.integration._harness import Procs, wait_until

from ._files import integrity_check, snapshot
from ._ledger import Ledger, Verdict, record_figures
from .conftest import APP

SNAPSHOTS = int(os.environ.get("OFFLOAD_TEST_SNAPSHOTS", "5"))


@pytest.fixture
def store_url(sqlite_url: str) -> str:
    """SQLite, syncing every commit (overrides the suite's engine-parametrized fixture)."""
    return f"{sqlite_url}?synchronous=full"


def keys_in(copy: Path) -> set[str]:
    conn = sqlite3.connect(copy)
    try:
        return {
            row[0] for row in conn.execute("SELECT json_extract(args, '$.key') FROM offload_jobs")
        }
    finally:
        conn.close()


def power_losses(
    store_url: str, procs: Procs, ledger: Ledger, workdir: Path, tmp_path: Path, wanted: int
) -> None:
    path = Path(SQLiteStore(store_url).path)
    for i in range(2):
        procs.start(
            ["-m", "tests.faults.count_producer", f"p{i}", "1000000", "0.005"], name=f"p{i}"
        )
    procs.worker(concurrency=4, app=APP)
    (workdir / "go").touch()
    wait_until(lambda: len(ledger.keys("end")) >= 50, what="the worker to run jobs too")
    rng = random.Random(wanted)
    expected: set[str] = set()
    present: Counter[str] = Counter()
    taken = tries = 0
    while taken < wanted:
        tries += 1
        assert tries <= 20 * wanted, f"only {taken} of {tries} copies held one moment"
        seen = len(ledger.keys("ok"))
        wait_until(
            lambda seen=seen, more=rng.randrange(1, 200): len(ledger.keys("ok")) >= seen + more,
            what="more enqueues",
            explain=procs.logs,
        )
        acknowledged = set(ledger.keys("ok"))  # before the copy begins
        copy = tmp_path / f"copy-{tries}.db"
        if not snapshot(path, copy):
            continue
        taken += 1
        assert integrity_check(copy) == "ok", f"copy {tries}"
        found = keys_in(copy)
        missing = acknowledged - found
        assert not missing, f"copy {tries} lacks acknowledged jobs {sorted(missing)[:10]}"
        expected |= {f"{tries}:{key}" for key in acknowledged}
        present.update(f"{tries}:{key}" for key in acknowledged & found)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{copy}{suffix}").unlink(missing_ok=True)
    for proc in procs.started:
        proc.signal(signal.SIGKILL)
    # Figures for docs/reliability.md: jobs are acknowledged jobs summed over the copies, and
    # a job is lost when a copy lacks it.
    verdict = Verdict(expected, expected, Counter(), present, {}, expected)
    record_figures(
        f"C5 power loss: {wanted} copies taken while writing (synchronous=full)",
        "sqlite",
        verdict,
        copies=taken,
        tries=tries,
    )


def test_a_copy_taken_while_writing_opens_intact_with_every_acknowledged_job(
    store_url: str, procs: Procs, ledger: Ledger, workdir: Path, tmp_path: Path
) -> None:
    power_losses(store_url, procs, ledger, workdir, tmp_path, SNAPSHOTS)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_fifty_copies_taken_while_writing_open_intact_with_every_acknowledged_job(
    store_url: str, procs: Procs, ledger: Ledger, workdir: Path, tmp_path: Path
) -> None:
    power_losses(store_url, procs, ledger, workdir, tmp_path, 50)
