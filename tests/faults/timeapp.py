"""Job types of the clock tests (catalogue D1, D2): a retry with a known backoff, held jobs of
both delivery modes, and a cron schedule that fires every second.

Workers import it as `tests.faults.timeapp:app`, some under libfaketime (see `test_clock.py`).
Every job writes `start`/`end` ledger lines for its key, except the cron job, which has no key
of its own: it appends one line to `ticks` per run, and the store's rows say which tick it was.
"""

from __future__ import annotations

import os

from offload import Offload

from ._ledger import note
from .faultapp import LEASE_SECONDS, MAINTENANCE_INTERVAL, hold, workdir

RETRY_BACKOFF = 3.0  # seconds between the two attempts of `fails_once`: a retry sooner is early


def runs(key: str) -> int:
    """How many times `key` has started, by the ledger."""
    try:
        text = (workdir() / "ledger").read_text()
    except FileNotFoundError:
        return 0
    return sum(1 for line in text.splitlines() if line.split()[:2] == ["start", key])


def make_app(url: str | None = None) -> Offload:
    app = Offload(url, lease_seconds=LEASE_SECONDS, maintenance_interval=MAINTENANCE_INTERVAL)

    @app.job()
    def work(key: str) -> int:
        note(workdir(), "start", key)
        note(workdir(), "end", key)
        return os.getpid()

    @app.job()
    def held(key: str) -> int:
        note(workdir(), "start", key)
        hold(key)
        note(workdir(), "end", key)
        return os.getpid()

    @app.job(delivery="at_most_once")
    def held_once(key: str) -> int:
        note(workdir(), "start", key)
        hold(key)
        note(workdir(), "end", key)
        return os.getpid()

    @app.job(backoff=RETRY_BACKOFF)
    def fails_once(key: str) -> int:
        """Fail the first attempt; the retry is due RETRY_BACKOFF seconds later."""
        note(workdir(), "start", key)
        if runs(key) == 1:
            raise RuntimeError(f"{key}: the first attempt fails on purpose")
        note(workdir(), "end", key)
        return os.getpid()

    @app.job()
    def tick() -> int:
        fd = os.open(workdir() / "ticks", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{os.getpid()}\n".encode())
        finally:
            os.close(fd)
        return os.getpid()

    if os.environ.get("OFFLOAD_TEST_CRON") == "1":
        app.schedule("every-second", "* * * * * */1", tick)
    return app


app = make_app()
