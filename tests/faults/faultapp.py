"""The job application the fault tests run in real worker processes.

Workers import it as `tests.faults.faultapp:app`; its store URL comes from `$OFFLOAD_URL` and
its ledger folder from `$OFFLOAD_TEST_DIR`. Every job writes `start` and `end` lines for its
`key` (see `_ledger.py`); timings are short so that a fault heals within seconds. A test that
needs job types of its own declares them in an app module of its own beside this one.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from offload import Offload
from tests._wait import eventually

from ._ledger import note

LEASE_SECONDS = 2.0
MAINTENANCE_INTERVAL = 0.2
BACKOFF = 0.1
HOLD_LIMIT = 120.0


def workdir() -> Path:
    return Path(os.environ["OFFLOAD_TEST_DIR"])


def hold(key: str) -> None:
    """Run until the test creates `release-<key>` in the work folder."""
    release = workdir() / f"release-{key}"
    eventually(release.exists, timeout=HOLD_LIMIT, interval=0.02, what=f"{key} to be released")


def make_app(url: str | None = None) -> Offload:
    """Every fault job type; `url=None` means `$OFFLOAD_URL`."""
    app = Offload(url, lease_seconds=LEASE_SECONDS, maintenance_interval=MAINTENANCE_INTERVAL)

    @app.job(backoff=BACKOFF)
    def work(key: str, seconds: float = 0.0) -> int:
        """Record a start, take `seconds`, record an end."""
        note(workdir(), "start", key)
        if seconds:
            time.sleep(seconds)
        note(workdir(), "end", key)
        return os.getpid()

    @app.job(backoff=BACKOFF, delivery="at_most_once")
    def work_once(key: str, seconds: float = 0.0) -> int:
        note(workdir(), "start", key)
        if seconds:
            time.sleep(seconds)
        note(workdir(), "end", key)
        return os.getpid()

    @app.job(backoff=BACKOFF)
    def held(key: str) -> int:
        """Start, then wait for the test to release it."""
        note(workdir(), "start", key)
        hold(key)
        note(workdir(), "end", key)
        return os.getpid()

    @app.job(backoff=BACKOFF)
    def poison(key: str) -> None:
        """Kill the worker process that runs it, every time."""
        note(workdir(), "start", key)
        os.kill(os.getpid(), signal.SIGKILL)

    return app


app = make_app()
