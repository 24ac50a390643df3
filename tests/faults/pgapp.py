"""The job application of the PostgreSQL fault tests (`tests.faults.pgapp:app`).

Like `faultapp`, its store URL comes from `$OFFLOAD_URL`, its ledger folder from
`$OFFLOAD_TEST_DIR`, and every job writes `start` and `end` lines for its `key`. Unlike it, the
queues keep delivery modes apart: `default` holds at-least-once types only, so a worker of it
commits its cycles without waiting for the disk (docs/postgres.md), and the at-most-once type
has a queue of its own. `$OFFLOAD_TEST_CRON=1` adds a schedule that fires every second.
"""

from __future__ import annotations

import os
import time

from offload import Limit, Offload, Unique
from offload._states import STATES

from ._ledger import note
from .faultapp import BACKOFF, LEASE_SECONDS, MAINTENANCE_INTERVAL, hold, workdir

MUTEX_SECONDS = 0.05  # how long a job of the mutex key holds it
RATE = 20.0  # starts per second of the rate-limited type, one token at a time


def make_app(url: str | None = None, *, cron: bool = False) -> Offload:
    """Every job type; `url=None` means `$OFFLOAD_URL`."""
    app = Offload(url, lease_seconds=LEASE_SECONDS, maintenance_interval=MAINTENANCE_INTERVAL)

    @app.job(backoff=BACKOFF)
    def work(key: str, seconds: float = 0.0) -> int:
        """Record a start, take `seconds`, record an end."""
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

    @app.job(backoff=BACKOFF, unique=Unique(keys=["key"], states=STATES))
    def unique_work(key: str) -> int:
        """Enqueued once per key, however often a client retries (in a transaction, with a
        COMMIT of its own)."""
        note(workdir(), "start", key)
        note(workdir(), "end", key)
        return os.getpid()

    @app.job(queue="once", delivery="at_most_once")
    def work_once(key: str, seconds: float = 0.0) -> int:
        note(workdir(), "start", key)
        if seconds:
            time.sleep(seconds)
        note(workdir(), "end", key)
        return os.getpid()

    @app.job(queue="limited", limit=Limit("mutex", concurrency=1))
    def mutex(key: str) -> None:
        note(workdir(), "start", key)
        time.sleep(MUTEX_SECONDS)  # the job's own work, while it holds the key
        note(workdir(), "end", key)

    @app.job(queue="limited", limit=Limit("rated", rate=RATE, per=1, burst=1))
    def rated(key: str) -> None:
        note(workdir(), "start", key)
        note(workdir(), "end", key)

    @app.job()
    def tick() -> int:
        """A cron tick: its record in the store (meta `tick`) is the evidence."""
        return os.getpid()

    if cron:
        app.schedule("every-second", "* * * * * */1", tick)
    return app


app = make_app(cron=os.environ.get("OFFLOAD_TEST_CRON") == "1")
