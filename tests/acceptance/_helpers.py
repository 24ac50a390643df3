"""What the acceptance tests share: running the real `offload` command, and waiting.

Every command runs as `python -m offload …` in a subprocess, with this folder on PYTHONPATH
(for `cliapp:app`), the test's temp folder as working directory, and `$OFFLOAD_URL` unset so
that nothing reaches a store the test did not make. Waits poll an observable condition with a
deadline (`wait_until`); nothing sleeps a fixed time.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from offload.store import open_store
from offload.store._contract import JobRecord, Store
from tests._wait import eventually

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
APP = "cliapp:app"
T = TypeVar("T")


@dataclass(frozen=True)
class Result:
    """How one command ended."""

    args: tuple[str, ...]
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def __str__(self) -> str:
        return (
            f"$ offload {' '.join(self.args)}\nexit {self.code}\n"
            f"--- stdout\n{self.out}--- stderr\n{self.err}"
        )


class CLI:
    """Runs `offload` commands in a folder with a controlled environment."""

    def __init__(self, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.cwd = cwd
        base = {k: v for k, v in os.environ.items() if k != "OFFLOAD_URL"}
        paths = [str(HERE), str(REPO), base.get("PYTHONPATH", "")]
        base["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        base["COLUMNS"] = "200"
        self.env = {**base, **(env or {})}

    def __call__(self, *args: str, code: int | None = 0, timeout: float = 60.0) -> Result:
        """Run a command to its end; assert its exit code unless `code` is None."""
        proc = subprocess.run(
            [sys.executable, "-m", "offload", *args],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        result = Result(tuple(args), proc.returncode, proc.stdout, proc.stderr)
        if code is not None:
            assert result.code == code, f"expected exit {code}\n{result}"
        return result

    def popen(self, *args: str, log: Path | None = None) -> subprocess.Popen[str]:
        """Start a command in the background (its output to `log`, or piped)."""
        command = [sys.executable, "-m", "offload", *args]
        if log is None:
            return subprocess.Popen(
                command,
                cwd=self.cwd,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        with log.open("w") as out:  # the child keeps its own descriptor
            return subprocess.Popen(
                command,
                cwd=self.cwd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )


def wait_until(predicate: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    """Poll `predicate` until it returns something truthy; fail the test after `timeout`."""
    __tracebackhide__ = True
    return eventually(predicate, timeout=timeout, what=what)


@contextmanager
def opened(url: str) -> Iterator[Store]:
    """The store at `url`, read from the test process, closed afterwards."""
    store = open_store(url)
    try:
        yield store
    finally:
        store.close()


def job(url: str, job_id: int) -> JobRecord:
    with opened(url) as store:
        found = store.job_get(job_id)
    assert found is not None, f"job {job_id} is missing"
    return found


def wait_state(url: str, job_id: int, *states: str) -> JobRecord:
    """Wait until a job is in one of `states` and return its record."""

    def check() -> JobRecord | None:
        r = job(url, job_id)
        return r if r.state in states else None

    return wait_until(check, f"job {job_id} to be {' or '.join(states)}")


@contextmanager
def running_worker(
    cli: CLI, url: str, log: Path, queues: str = "default,emails"
) -> Iterator[subprocess.Popen[str]]:
    """An `offload worker` for `cliapp:app`, registered in the store before the block runs;
    stopped with SIGTERM (and waited for) afterwards. The store is migrated first, so that the
    test can read it while the worker starts."""
    with opened(url) as store:
        store.migrate()
    proc = cli.popen(
        "worker", APP, "--url", url, "--queues", queues, "--poll-interval", "0.2", log=log
    )

    def registered() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"the worker exited with {proc.returncode}:\n{log.read_text()}")
        with opened(url) as store:
            return any(w.pid == proc.pid for w in store.worker_list(60.0))

    try:
        wait_until(registered, "the worker to register in the store")
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def copy_store(source: Path, target: Path) -> None:
    """Copy a SQLite store file consistently (the backup API also takes what is in the WAL)."""
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


@dataclass(frozen=True)
class Seeded:
    """Ids of the seeded store's jobs, by what happened to them."""

    added: int  # add(a=1, b=2): completed with result 3
    greeted: int  # greet(name="ada") on queue emails: completed
    exploded: int  # explode(reason="kaput"): dead after one attempt
    later: int  # greet(name="later") delayed an hour: scheduled
    waiting: int  # add(a=1, b=1) on queue "nobody", which no worker serves: available
