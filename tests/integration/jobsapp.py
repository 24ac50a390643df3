"""The job application that the integration tests run in real `offload worker` processes.

Workers import it as `tests.integration.jobsapp:app`; its store URL comes from `$OFFLOAD_URL`.
Jobs keep a ledger outside the store under test: each appends `<event> <key> <pid>` lines to
`$OFFLOAD_TEST_DIR/ledger` (one `write` on an `O_APPEND` file, so lines from many processes never
interleave). A job that must stay running waits for the file `release-<key>` there, so a test
decides when it ends. `$OFFLOAD_TEST_CRON=1` adds a schedule that fires every second.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from offload import Offload
from tests._wait import eventually

LEASE_SECONDS = 2.0
MAINTENANCE_INTERVAL = 0.2
BACKOFF = 0.1
TIMEOUT = 1.0
HOLD_LIMIT = 120.0


def workdir() -> Path:
    return Path(os.environ["OFFLOAD_TEST_DIR"])


def note(event: str, key: str) -> None:
    """Append one ledger line, atomically with respect to other processes."""
    line = f"{event} {key} {os.getpid()}\n".encode()
    fd = os.open(workdir() / "ledger", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def runs(key: str) -> int:
    """How many times a job with this key has started, by the ledger."""
    try:
        text = (workdir() / "ledger").read_text()
    except FileNotFoundError:
        return 0
    return sum(1 for line in text.splitlines() if line.split()[:2] == ["start", key])


def hold(key: str) -> int:
    """Run until the test releases `key`; the ledger shows start and end."""
    note("start", key)
    release = workdir() / f"release-{key}"
    eventually(release.exists, timeout=HOLD_LIMIT, interval=0.02, what=f"{key} to be released")
    note("end", key)
    return os.getpid()


def make_app(url: str | None = None, *, cron: bool = False) -> Offload:
    """The application with every test job type; `url=None` means `$OFFLOAD_URL`."""
    app = Offload(url, lease_seconds=LEASE_SECONDS, maintenance_interval=MAINTENANCE_INTERVAL)

    @app.job()
    def noop() -> None:
        return None

    @app.job()
    def record(key: str) -> int:
        note("run", key)
        return os.getpid()

    @app.job(name="hold")
    def hold_at_least_once(key: str) -> int:
        return hold(key)

    @app.job(delivery="at_most_once")
    def hold_once(key: str) -> int:
        return hold(key)

    @app.job()
    def kill_own_worker(key: str) -> None:
        note("start", key)
        os.kill(os.getpid(), signal.SIGKILL)

    @app.job(max_attempts=5, backoff=BACKOFF)
    def flaky(key: str, failures: int) -> int:
        note("start", key)
        n = runs(key)
        if n <= failures:
            raise RuntimeError(f"planned failure {n} of {failures}")
        note("end", key)
        return n

    @app.job(max_attempts=3, backoff=BACKOFF)
    def always_fails(key: str) -> None:
        note("start", key)
        raise ValueError(f"{key} always fails")

    @app.job(timeout=TIMEOUT, max_attempts=2, backoff=BACKOFF)
    def spin(key: str, seconds: float) -> None:
        """Busy-loop in Python past the timeout."""
        note("start", key)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass
        note("end", key)

    @app.job(timeout=TIMEOUT, max_attempts=2, backoff=BACKOFF)
    async def sleep_async(key: str, seconds: float) -> None:
        note("start", key)
        await asyncio.sleep(seconds)
        note("end", key)

    @app.job()
    def tick() -> int:
        note("run", "tick")
        return os.getpid()

    if cron:
        app.schedule("every-second", "* * * * * */1", tick)
    return app


app = make_app(cron=os.environ.get("OFFLOAD_TEST_CRON") == "1")
