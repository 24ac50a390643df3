"""What the integration tests share: real worker processes, the jobs' ledger, and waiting.

Every wait is on an observable event (a row in the store, a ledger line, a log line, a process
exit) through `wait_until`, which fails with a message saying what never happened.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from offload import Offload
from offload.store._contract import JobFilter, JobRecord
from tests._wait import eventually

REPO = Path(__file__).resolve().parents[2]
APP = "tests.integration.jobsapp:app"
T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 30.0,
    what: str | None = None,
    explain: Callable[[], Any] | None = None,
    interval: float = 0.05,
) -> T:
    """Poll `predicate` until it returns something truthy, and return that.

    Fails the test after `timeout` seconds, naming `what` and showing `explain()` if given.
    """
    __tracebackhide__ = True
    return eventually(predicate, timeout=timeout, what=what, explain=explain, interval=interval)


# --- the store ----------------------------------------------------------------------------
def record(app: Offload, job_id: int) -> JobRecord:
    found = app.store.job_get(job_id)
    assert found is not None, f"job {job_id} is missing"
    return found


def state_is(app: Offload, job_id: int, *states: str) -> Callable[[], JobRecord | None]:
    """A predicate: the job's record once it is in one of `states`."""

    def check() -> JobRecord | None:
        r = record(app, job_id)
        return r if r.state in states else None

    check.__name__ = f"job {job_id} to be {' or '.join(states)}"
    return check


def all_jobs(app: Offload, kind: str | None = None) -> list[JobRecord]:
    """Every job (of a kind), oldest first."""
    out: list[JobRecord] = []
    before = None
    while True:
        page = app.store.job_list(JobFilter(kind=kind, limit=1000, before_id=before))
        out.extend(page)
        if len(page) < 1000:
            return out[::-1]
        before = page[-1].id


def count_in(app: Offload, state: str) -> int:
    return sum(c.count for c in app.store.job_counts() if c.state == state)


def counts(app: Offload) -> dict[str, int]:
    out: Counter[str] = Counter()
    for c in app.store.job_counts():
        out[c.state] += c.count
    return dict(out)


def counter(app: Offload, name: str) -> int:
    return app.store.counters().get(name, 0)


# --- the ledger ---------------------------------------------------------------------------
class Ledger:
    """The jobs' own record of what ran where, kept outside the store (see jobsapp)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "ledger"

    def lines(self) -> list[tuple[str, str, int]]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            event, key, pid = line.split()
            out.append((event, key, int(pid)))
        return out

    def pids(self, event: str, key: str) -> list[int]:
        return [pid for e, k, pid in self.lines() if (e, k) == (event, key)]

    def count(self, event: str, key: str) -> int:
        return len(self.pids(event, key))

    def tally(self, event: str) -> Counter[str]:
        """How many lines of `event` each key has."""
        return Counter(k for e, k, _ in self.lines() if e == event)

    def release(self, key: str) -> None:
        """Let a `hold` job with this key finish."""
        (self.folder / f"release-{key}").touch()

    def wait_started(self, key: str, times: int = 1, timeout: float = 30.0) -> list[int]:
        """Wait until the job `key` has started `times` times; the pids that ran it."""
        return wait_until(
            lambda: (p := self.pids("start", key)) and len(p) >= times and p,
            timeout,
            f"job {key!r} to start {times} time(s)",
            lambda: f"ledger: {self.lines()[-20:]}",
        )


# --- processes ----------------------------------------------------------------------------
def descendants(pid: int) -> list[int]:
    """Every live descendant of a process, read from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class Proc:
    """One started process (a worker, a supervisor or a producer) and its log file."""

    def __init__(self, popen: subprocess.Popen[bytes], log: Path, name: str) -> None:
        self.popen = popen
        self.log_path = log
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name} pid={self.pid}>"

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def wait_log(self, text: str, timeout: float = 30.0) -> None:
        """Wait until the process has logged `text`."""
        wait_until(
            lambda: text in self.log(),
            timeout,
            f"{self.name} to log {text!r}",
            lambda: f"{self.name} log:\n{self.tail()}",
        )

    def wait_exit(self, timeout: float = 30.0) -> int:
        """Wait for the process to exit; its exit code."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"{self.name} (pid {self.pid}) did not exit within {timeout:g}s; log:\n"
                f"{self.tail()}",
                pytrace=False,
            )


class Procs:
    """Starts processes on one store and kills whatever is left of them at teardown."""

    def __init__(self, url: str, folder: Path) -> None:
        self.url = url
        self.folder = folder
        self.started: list[Proc] = []
        path = os.environ.get("PYTHONPATH")
        self.env = {
            **os.environ,
            "OFFLOAD_URL": url,
            "OFFLOAD_TEST_DIR": str(folder),
            "PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO),
        }
        self.env.pop("OFFLOAD_TEST_CRON", None)

    def start(self, argv: list[str], name: str, env: dict[str, str] | None = None) -> Proc:
        """Start `python <argv>` in a session of its own, logging to a file."""
        log = self.folder / f"{name}-{len(self.started)}.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                [sys.executable, *argv],
                cwd=REPO,
                env={**self.env, **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = Proc(popen, log, name)
        self.started.append(proc)
        return proc

    def worker(
        self,
        *options: str,
        queues: str = "default",
        concurrency: int = 4,
        maintenance: bool = True,
        name: str = "worker",
        env: dict[str, str] | None = None,
        app: str = APP,
    ) -> Proc:
        """`offload worker tests.integration.jobsapp:app` (or `app`) with these options."""
        argv = ["-m", "offload", "worker", app, "--url", self.url, "--queues", queues]
        argv += ["--concurrency", str(concurrency), *options]
        if not maintenance:
            argv.append("--no-maintenance")
        return self.start(argv, name, env)

    def maintainer(self) -> Proc:
        """A worker of an unused queue that stays up to hold maintenance leadership, so that
        workers killed by a test (started with maintenance=False) never hold it."""
        return self.worker(queues="maintenance-only", concurrency=1, name="maintainer")

    def cleanup(self) -> None:
        """SIGKILL every process started here and all their descendants."""
        for proc in self.started:
            pids = [proc.pid, *descendants(proc.pid)]
            for pid in pids:
                for sig in (signal.SIGCONT, signal.SIGKILL):
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.popen.wait(10)
            except subprocess.TimeoutExpired:
                pass

    def logs(self, lines: int = 40) -> str:
        return "\n\n".join(f"--- {p.name} pid {p.pid}:\n{p.tail(lines)}" for p in self.started)
