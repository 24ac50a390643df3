"""The job application of the run-time tests (test_run_time.py), run by real `offload worker`
processes as `tests.integration.runtimeapp:app`; its store URL comes from `$OFFLOAD_URL`.

`report` cannot be interrupted and always runs longer than its max_run_time (a second against
0.2 s: a wide margin, not a timing claim); `blocker` is async code that blocks the event loop
with `time.sleep`; `quick` is a job of the same queue that ends at once.
"""

from __future__ import annotations

import time

from offload import Offload

QUEUE = "reports"


def make_app(url: str | None = None) -> Offload:
    app = Offload(url, lease_seconds=2.0, maintenance_interval=0.2, max_run_time=0.2)

    @app.job(queue=QUEUE, owner="analytics")
    def report(n: int) -> int:
        time.sleep(1.0)  # past max_run_time (the app's default, 0.2 s), and no way to stop
        return n

    @app.job(queue=QUEUE, owner="search", max_run_time=30.0)
    async def blocker(n: int) -> int:
        time.sleep(1.5)  # holds the worker's event loop: the bug the watchdog reports
        return n

    @app.job(queue=QUEUE)
    def quick(n: int) -> int:
        return n

    return app


app = make_app()
