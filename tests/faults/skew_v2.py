"""Version 2 of the job types of the version-skew tests (F5, test_version_skew.py).

`skew.greet` gains an optional argument `loud`; `skew.bill` gains a required `currency`.
Workers import `tests.faults.skew_v2:app`.
"""

from __future__ import annotations

from offload import Offload

from ._ledger import note
from .faultapp import LEASE_SECONDS, MAINTENANCE_INTERVAL, workdir
from .skew_v1 import BACKOFF, MAX_ATTEMPTS


def make_app(url: str | None = None) -> Offload:
    app = Offload(url, lease_seconds=LEASE_SECONDS, maintenance_interval=MAINTENANCE_INTERVAL)

    @app.job(name="skew.greet", backoff=BACKOFF, max_attempts=MAX_ATTEMPTS)
    def greet(key: str, loud: bool = False) -> str:
        note(workdir(), "start", key)
        note(workdir(), "end", key)
        return "v2 loud" if loud else "v2"

    @app.job(name="skew.bill", backoff=BACKOFF, max_attempts=MAX_ATTEMPTS)
    def bill(key: str, currency: str) -> str:
        note(workdir(), "start", key)
        note(workdir(), "end", key)
        return f"v2 {currency}"

    return app


app = make_app()
