"""The job application of the run-time tests (test_run_time.py), run by real `offload worker`
processes as `tests.integration.runtimeapp:app`; its store URL comes from `$OFFLOAD_URL`.

`report` cannot be interrupted and runs until the test creates `release-report-<n>` in
`$OFFLOAD_TEST_DIR`, so past its max_run_time of 0.2 s for as long as the test likes;
`blocker` is async code that blocks the event loop with `time.sleep` (1.5 s against the
watchdog's 0.5 s: a wide margin, not a timing claim); `quick` is a job of the same queue that
ends at once.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from offload import Offload
from tests._wait import eventually

QUEUE = "reports"


def make_app(url: str | None = None) -> Offload:
    app = Offload(url, lease_seconds=2.0, maintenance_interval=0.2, max_run_time=0.2)

    @app.job(queue=QUEUE, owner="analytics")
    def report(n: int) -> int:
        release = Path(os.environ["OFFLOAD_TEST_DIR"]) / f"release-report-{n}"
        eventually(release.exists, timeout=120.0, what=f"{release} (the test lets it end)")
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
