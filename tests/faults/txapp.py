"""The job application of the both-or-neither fault test (test_both_or_neither.py): a job that
enqueues a follow-up and completes itself in one `app.transaction()`, and a fault point that a
test arms in a worker process through its environment.

Workers import it as `tests.faults.txapp:app`. `TX_FAULT=inside` SIGKILLs the worker inside the
transaction's block, once both writes are made and before the commit; `TX_FAULT=after` right
after the commit, before the job's function returns.
"""

from __future__ import annotations

import os
import signal

import offload
from offload import Offload

from .faultapp import BACKOFF, LEASE_SECONDS, MAINTENANCE_INTERVAL

FOLLOW_UPS = "follow-ups"  # a queue no worker of the test takes: follow-ups stay to be counted


def _fault(point: str) -> None:
    if os.environ.get("TX_FAULT") == point:
        os.kill(os.getpid(), signal.SIGKILL)


def make_app(url: str | None = None) -> Offload:
    """`url=None` means `$OFFLOAD_URL`."""
    app = Offload(url, lease_seconds=LEASE_SECONDS, maintenance_interval=MAINTENANCE_INTERVAL)

    @app.job(queue=FOLLOW_UPS)
    def ship(order: int) -> None:
        """The follow-up: caused by `charge`, committed with its completion."""

    @app.job(backoff=BACKOFF)
    def charge(order: int) -> None:
        job = offload.current_job()
        with app.transaction() as tx:
            ship.options(connection=tx).enqueue(order)
            job.complete(tx, result={"charged": order, "pid": os.getpid()})
            _fault("inside")
        _fault("after")

    return app


app = make_app()
