"""The job application of the workflow tests (test_workflows.py, and the fault tests of
tests/faults/test_workflow_faults.py), run in real `offload worker` processes.

Workers import it as `tests.integration.workflowapp:app`. Jobs write `start`/`end` (steps) and
`undo`/`undone` (undo jobs) lines to the ledger of jobsapp.py. A job given `hold=True` runs until
the test creates `release-<key>`; one whose `fail-<key>` file exists raises. `$WF_FAULT=advance`
SIGKILLs a worker inside the transaction that completes a step, once the jobs of the steps it
unblocks are inserted and before the commit.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import offload
from offload import Offload
from tests._wait import eventually

from .jobsapp import BACKOFF, HOLD_LIMIT, LEASE_SECONDS, MAINTENANCE_INTERVAL, note, workdir


def _hold(key: str) -> None:
    release = workdir() / f"release-{key}"
    eventually(release.exists, timeout=HOLD_LIMIT, interval=0.02, what=f"{key} to be released")


def _fails(key: str) -> bool:
    return (workdir() / f"fail-{key}").exists()


def _arm_fault() -> None:
    """`$WF_FAULT=advance`: die once a workflow's advance has inserted the jobs it unblocks,
    inside the acknowledgement's transaction (it never commits)."""
    if os.environ.get("WF_FAULT") != "advance":
        return
    from offload.store.postgres import _workflows as pg
    from offload.store.sqlite import _workflows as lite

    for module in (lite, pg):
        real = module.advance

        def advance(io: Any, ids: Any, real: Any = real) -> int:
            made = real(io, ids)
            if made:
                os.kill(os.getpid(), signal.SIGKILL)
            return int(made)

        module.advance = advance  # type: ignore[assignment]


def make_app(url: str | None = None) -> Offload:
    """`url=None` means `$OFFLOAD_URL`."""
    app = Offload(url, lease_seconds=LEASE_SECONDS, maintenance_interval=MAINTENANCE_INTERVAL)

    @app.job(backoff=BACKOFF)
    def step(key: str, hold: bool = False) -> str:
        note("start", key)
        if hold:
            _hold(key)
        if _fails(key):
            raise RuntimeError(f"{key} fails")
        note("end", key)
        return key

    @app.job(backoff=BACKOFF)
    def collect(key: str) -> dict[str, Any]:
        """A step that returns the results of the steps it depends on."""
        note("start", key)
        results = offload.current_job().results()
        note("end", key)
        return results

    @app.job(backoff=BACKOFF)
    def undo(key: str, hold: bool = False) -> str:
        note("undo", key)
        if hold:
            _hold(f"undo-{key}")
        if _fails(f"undo-{key}"):
            raise RuntimeError(f"undo of {key} fails")
        note("undone", key)
        return key

    @app.job(backoff=BACKOFF)
    def spawn(depth: int) -> None:
        """Enqueues two jobs of one less depth: a tree of jobs caused by one."""
        if depth > 0:
            spawn.enqueue(depth - 1)
            with app.transaction() as tx:
                spawn.options(connection=tx).enqueue(depth - 1)

    return app


_arm_fault()
app = make_app()
