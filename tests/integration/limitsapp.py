"""The job application of the limits integration tests (`tests.integration.limitsapp:app`).

Jobs write `<event> <key> <pid>` lines to the ledger of `jobsapp` (`$OFFLOAD_TEST_DIR/ledger`),
so the test sees which ran, in what order, in which process.
"""

from __future__ import annotations

import os
import time

from offload import Adaptive, Limit, Offload, Throttled
from tests.integration.jobsapp import LEASE_SECONDS, MAINTENANCE_INTERVAL, hold, note

RATE = 5  # starts of `rated` per hour: the test finishes long before a token refills
WORK_SECONDS = 0.02  # how long a mutex job holds its key: long enough to overlap if it could


def make_app(url: str | None = None) -> Offload:
    app = Offload(url, lease_seconds=LEASE_SECONDS, maintenance_interval=MAINTENANCE_INTERVAL)

    @app.job(limit=Limit("shop:{shop}", concurrency=1))
    def mutex_work(shop: int, n: int) -> None:
        if n == 0:  # the first job of a shop runs until the test releases it
            hold(f"{shop}:{n}")
            return
        note("start", f"{shop}:{n}")
        time.sleep(WORK_SECONDS)  # the job's own work, not synchronisation
        note("end", f"{shop}:{n}")

    @app.job(limit=Limit(rate=RATE, per=3600))
    def rated(n: int) -> None:
        note("start", f"rated:{n}")

    @app.job()
    def marker(n: int) -> None:
        note("run", f"marker:{n}")

    @app.job(
        max_attempts=3,
        backoff=0.1,
        limit=Limit("api", concurrency=8, adaptive=Adaptive(floor=1, ceiling=8, cooldown=0)),
    )
    def pushed_back(n: int) -> None:
        note("start", f"pushed:{n}")
        raise Throttled("429 from the API", retry_after=3600)

    return app


app = make_app() if os.environ.get("OFFLOAD_URL") else None
