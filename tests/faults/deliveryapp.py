"""Job types of the delivery and concurrency tests (catalogue E2-E7, F2): the fault app's, and
unique jobs, a per-group FIFO mutex, retries with a known backoff, and a job type only a newer
deploy declares.

Workers import it as `tests.faults.deliveryapp:app`; `$OFFLOAD_TEST_V2=1` makes it the newer
deploy, which also declares `v2_thing`. Every job writes `start` and `end` ledger lines.
"""

from __future__ import annotations

import os
import time

from offload import Exponential, Limit, Offload, Unique

from ._ledger import note
from .faultapp import make_app as make_fault_app
from .faultapp import workdir
from .timeapp import runs

RETRY_BACKOFF = Exponential(base=0.3, factor=2.0, maximum=60.0, jitter=0.25)


def make_app(url: str | None = None, *, v2: bool | None = None) -> Offload:
    app = make_fault_app(url)

    @app.job(unique=Unique(keys=["key"]))
    def unique_work(key: str) -> int:
        """Unique by its key among unfinished jobs (the policy path, not `unique_key`)."""
        note(workdir(), "start", key)
        note(workdir(), "end", key)
        return os.getpid()

    @app.job(limit=Limit("group:{group}", concurrency=1, fifo=True))
    def grouped(key: str, group: int, seconds: float = 0.0) -> int:
        """One job of a group at a time, in enqueue order."""
        note(workdir(), "start", key)
        if seconds:
            time.sleep(seconds)
        note(workdir(), "end", key)
        return os.getpid()

    @app.job(max_attempts=5, backoff=RETRY_BACKOFF)
    def flaky(key: str, failures: int) -> int:
        """Fail the first `failures` attempts, then succeed."""
        note(workdir(), "start", key)
        if runs(key) <= failures:
            raise RuntimeError(f"{key}: planned failure {runs(key)} of {failures}")
        note(workdir(), "end", key)
        return runs(key)

    @app.job(max_attempts=5, backoff=0.05)
    def always_fails(key: str) -> None:
        note(workdir(), "start", key)
        raise ValueError(f"{key} always fails")

    if v2 if v2 is not None else os.environ.get("OFFLOAD_TEST_V2") == "1":

        @app.job()
        def v2_thing(key: str) -> int:
            """Declared by the newer deploy only."""
            note(workdir(), "start", key)
            note(workdir(), "end", key)
            return os.getpid()

    return app


app = make_app()
