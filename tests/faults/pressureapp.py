"""The app of the backpressure test (catalogue H2): the default queue bounded at `BOUND`
available jobs, and a `work` job that takes a little while, so that producers outpace the
workers. Workers and producers import it as `tests.faults.pressureapp:app`."""

from __future__ import annotations

import os
import time

from offload import Offload

from ._ledger import note
from .faultapp import LEASE_SECONDS, MAINTENANCE_INTERVAL, workdir

BOUND = 50


def make_app(url: str | None = None) -> Offload:
    app = Offload(
        url,
        lease_seconds=LEASE_SECONDS,
        maintenance_interval=MAINTENANCE_INTERVAL,
        max_backlog={"default": BOUND},
    )

    @app.job()
    def work(key: str, seconds: float = 0.02) -> int:
        note(workdir(), "start", key)
        time.sleep(seconds)
        note(workdir(), "end", key)
        return os.getpid()

    return app


app = make_app()
