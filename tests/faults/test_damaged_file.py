"""Catalogue C4: a damaged SQLite file.

A copy of a store with jobs in it is damaged three ways: 16 random bytes flipped in a page
numbered 2 or more (with a seed whose damage `PRAGMA quick_check` sees: damage inside a row's
data is invisible to it, and is the decoding guard's to catch), the file cut short by one page,
and its header overwritten. A worker and the commands started on it exit 3 with one line that
names the file and the damage, never a traceback, never run a job and never write to the file;
under the supervisor nothing is restarted. A worker that meets damage while running (the check
skipped with `?integrity_check=off`) stops the same way instead of retrying for ever.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from offload import Offload
from offload.store.sqlite import SQLiteStore
from tests.integration._harness import REPO, Procs

from ._files import (
    damage_header,
    flip_bytes,
    flip_page_start,
    quick_check,
    root_page,
    settle,
    truncate_one_page,
)
from ._ledger import Ledger
from .conftest import APP

JOBS = 300


@pytest.fixture
def store_url(sqlite_url: str) -> str:
    """SQLite only (overrides the suite's engine-parametrized fixture)."""
    return sqlite_url


def flipped(path: Path) -> str:
    for seed in range(100):
        scratch = Path(f"{path}.try")
        scratch.write_bytes(path.read_bytes())
        page = flip_bytes(scratch, seed)
        found = quick_check(scratch)
        scratch.unlink()
        if found:
            flip_bytes(path, seed)
            return f"16 bytes of page {page} flipped (seed {seed}): {found[0]}"
    raise AssertionError("no seed damaged what quick_check reads")


def truncated(path: Path) -> str:
    truncate_one_page(path)
    return "one page short"


def header(path: Path) -> str:
    damage_header(path)
    return "header overwritten"


DAMAGE: dict[str, Callable[[Path], str]] = {
    "flipped": flipped,
    "truncated": truncated,
    "header": header,
}


def stored_jobs(app: Offload, ledger: Ledger) -> Path:
    """The store with JOBS acknowledged jobs, closed and settled into its one file."""
    work = app.job_type("work")
    jobs = app.enqueue_many(work.prepare(key=f"job-{i}") for i in range(JOBS))
    for i, job in enumerate(jobs):
        ledger.note("invoke", f"job-{i}")
        ledger.note("ok", f"job-{i}", job.id)
    app.close()
    path = Path(SQLiteStore(app.config.url).path)
    settle(path)
    return path


def offload(procs: Procs, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `python -m offload ARGS` to its end, in the fault tests' environment."""
    return subprocess.run(
        [sys.executable, "-m", "offload", *args],
        cwd=REPO,
        env=procs.env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_clear_line(done: subprocess.CompletedProcess[str], path: Path) -> str:
    """The command's error line, after checking it is the only one and names the file."""
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, output
    assert f"SQLite file {path} is damaged" in errors[0], errors[0]
    assert "restore it from a backup" in errors[0]
    return errors[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("how", list(DAMAGE))
def test_a_damaged_file_stops_workers_and_commands_with_one_line_and_exit_3(
    how: str, app: Offload, procs: Procs, ledger: Ledger
) -> None:
    path = stored_jobs(app, ledger)
    what = DAMAGE[how](path)
    before = digest(path)
    url = app.config.url

    worker = offload(procs, "worker", APP, "--url", url)
    assert worker.returncode == 3, (what, worker.stderr)
    line = one_clear_line(worker, path)
    if how == "truncated":
        assert "truncated" in line
    if how == "header":
        assert "not SQLite's" in line

    supervisor = offload(procs, "worker", APP, "--url", url, "--processes", "2")
    assert supervisor.returncode == 3, supervisor.stderr
    one_clear_line(supervisor, path)
    assert "started worker process" not in supervisor.stderr, "the damage was found too late"

    for command in (["jobs", "list"], ["stats"], ["migrate"], ["rules", "list"]):
        done = offload(procs, *command, "--url", url)
        assert done.returncode == 3, (command, done.stdout, done.stderr)
        one_clear_line(done, path)

    assert ledger.keys("start") == {}, "a job ran on a damaged file"
    assert digest(path) == before, "something wrote to the damaged file"


def test_a_worker_that_meets_damage_while_running_stops_and_is_not_restarted(
    app: Offload, procs: Procs, ledger: Ledger
) -> None:
    path = stored_jobs(app, ledger)
    flip_page_start(path, root_page(path, "offload_jobs"))  # any read of a job meets it
    url = f"{app.config.url}?integrity_check=off"  # as for a file too large to check

    single = offload(procs, "worker", APP, "--url", url)
    assert single.returncode == 3, single.stderr
    one_clear_line(single, path)
    assert "claim failed" not in single.stderr

    supervisor = procs.start(
        ["-m", "offload", "worker", APP, "--url", url, "--processes", "2"], name="supervisor"
    )
    assert supervisor.wait_exit(timeout=60) == 3, supervisor.tail()
    log = supervisor.log()
    assert log.count("started worker process") == 2, "a damaged store's worker was restarted"
    assert "a restart cannot fix that" in log
    assert "claim failed" not in log and "Traceback" not in log, supervisor.tail()
