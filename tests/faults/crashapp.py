"""The job application of the crash fault tests (test_crashes.py): faultapp's job types and a few
of their own, and crash points a test arms in a worker process through its environment.

Workers import it as `tests.faults.crashapp:app`. Crash points stand in for a SIGKILL at an exact
moment of the worker's cycle; they wrap the store's `job_ack_claim` in the worker process only:

- `CRASH_AFTER_CLAIM=1`: the process kills itself once a claim that took jobs has committed,
  before any of them starts;
- `CRASH_BEFORE_ACK=1`: a `finish_then_crash` job arms it; the process kills itself when it is
  about to write that job's acknowledgement (the job ran to its end, the store never heard).

`CRASH_ADDRESS_SPACE_MB=<n>` caps the worker process's address space (RLIMIT_AS) at start.
"""

from __future__ import annotations

import os
import resource
import signal
import threading
from typing import Any

from offload import Offload

from ._ledger import note
from .faultapp import BACKOFF, hold, workdir
from .faultapp import make_app as make_fault_app

_armed = threading.Event()  # a finish_then_crash job ended: die before its acknowledgement


def make_app(url: str | None = None) -> Offload:
    """faultapp's job types and the crash tests' own; `url=None` means `$OFFLOAD_URL`."""
    app = make_fault_app(url)

    @app.job(backoff=BACKOFF, delivery="at_most_once")
    def held_once(key: str) -> int:
        """Start, then wait for the test to release it (at most once)."""
        note(workdir(), "start", key)
        hold(key)
        note(workdir(), "end", key)
        return os.getpid()

    @app.job(backoff=BACKOFF)
    def finish_then_crash(key: str) -> int:
        """Run to the end, then take the worker down before its acknowledgement is written."""
        note(workdir(), "start", key)
        note(workdir(), "end", key)
        _armed.set()
        return os.getpid()

    @app.job(backoff=BACKOFF, delivery="at_most_once")
    def finish_then_crash_once(key: str) -> int:
        note(workdir(), "start", key)
        note(workdir(), "end", key)
        _armed.set()
        return os.getpid()

    @app.job(backoff=BACKOFF, queue="side")
    def side_work(key: str) -> int:
        """`work` in a queue of its own."""
        note(workdir(), "start", key)
        note(workdir(), "end", key)
        return os.getpid()

    @app.job(backoff=BACKOFF, max_attempts=2)
    def hog(key: str, megabytes: int) -> int:
        """Allocate (and touch) `megabytes` of memory at once."""
        note(workdir(), "start", key)
        block = bytearray(megabytes * 2**20)
        note(workdir(), "end", key)
        return len(block) // 2**20

    return app


def _install_crash_points(app: Offload) -> None:
    after_claim = os.environ.get("CRASH_AFTER_CLAIM") == "1"
    before_ack = os.environ.get("CRASH_BEFORE_ACK") == "1"
    if not (after_claim or before_ack):
        return
    store = app.store
    real = store.job_ack_claim

    def job_ack_claim(*args: Any, **kwargs: Any) -> Any:
        done, failed = args[0], args[1]
        if before_ack and _armed.is_set() and (done or failed):
            os.kill(os.getpid(), signal.SIGKILL)
        got = real(*args, **kwargs)
        if after_claim and got.claimed:
            os.kill(os.getpid(), signal.SIGKILL)
        return got

    store.job_ack_claim = job_ack_claim  # type: ignore[method-assign]


app = make_app()
_cap = os.environ.get("CRASH_ADDRESS_SPACE_MB")
if _cap:
    _limit = int(_cap) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (_limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
_install_crash_points(app)
