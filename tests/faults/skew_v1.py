"""Version 1 of the job types of the version-skew tests (F5, test_version_skew.py).

`skew.greet` takes a key; version 2 adds an optional argument. `skew.bill` takes a key;
version 2 requires a currency. Workers import `tests.faults.skew_v1:app`.
"""

from __future__ import annotations

from offload import Offload

from ._ledger import note
from .faultapp import LEASE_SECONDS, MAINTENANCE_INTERVAL, workdir

BACKOFF = 0.3
MAX_ATTEMPTS = 100  # the test swaps workers long before a job could run out of attempts


def make_app(url: str | None = None) -> Offload:
    app = Offload(url, lease_seconds=LEASE_SECONDS, maintenance_interval=MAINTENANCE_INTERVAL)

    @app.job(name="skew.greet", backoff=BACKOFF, max_attempts=MAX_ATTEMPTS)
    def greet(key: str) -> str:
        note(workdir(), "start", key)
        note(workdir(), "end", key)
        return "v1"

    @app.job(name="skew.bill", backoff=BACKOFF, max_attempts=MAX_ATTEMPTS)
    def bill(key: str) -> str:
        note(workdir(), "start", key)
        note(workdir(), "end", key)
        return "v1"

    return app


app = make_app()
