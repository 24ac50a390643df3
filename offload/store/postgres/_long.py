"""The PostgreSQL engine's long-job operations (part of the jobs family): an iteration job's
state at the start of a run, checkpoints, putting a stopped job back, ending one cancelled, and
stop requests (docs/long-jobs.md). None of them is on an ordinary job's path."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from offload.store._codec import dumps, read
from offload.store._contract import AckResult, Checkpoint, IterationState, Lease, PutBack
from offload.store.postgres import _workflows as workflows
from offload.store.postgres._core import Conn, PostgresCore


def _columns(checkpoints: Sequence[Checkpoint]) -> dict[str, Any]:
    return {
        "ids": [c.id for c in checkpoints],
        "tokens": [c.token for c in checkpoints],
        "has": [c.has_cursor for c in checkpoints],
        "cursors": [
            None if not c.has_cursor or c.cursor is None else dumps(c.cursor) for c in checkpoints
        ],
        "done": [None if c.done is None else float(c.done) for c in checkpoints],
        "total": [None if c.total is None else float(c.total) for c in checkpoints],
    }


class PostgresLongJobs(PostgresCore):
    """Long-job operations on the PostgreSQL engine."""

    def job_iteration_state(self, lease: Lease) -> IterationState | None:
        rows = self._rows("job_iteration_state", {"id": lease.id, "token": lease.token})
        if not rows:
            return None
        stored, done, total, request = rows[0]
        values, _bad = read({"cursor": stored}, decoded=True)
        return IterationState(values["cursor"], done, total, request)

    def job_checkpoint_many(self, checkpoints: Sequence[Checkpoint]) -> dict[int, str | None]:
        if not checkpoints:
            return {}
        params = _columns(checkpoints)
        params["remaining"] = [
            None if c.remaining is None else float(c.remaining) for c in checkpoints
        ]
        return {r[0]: r[1] for r in self._rows("job_checkpoint", params, idempotent=True)}

    def job_put_back_many(self, jobs: Sequence[PutBack]) -> AckResult:
        if not jobs:
            return AckResult(0, 0)
        params = _columns([j.checkpoint for j in jobs])
        params["delay"] = [max(float(j.delay), 0.0) for j in jobs]
        params["channel"] = self.channel
        applied = int(self._scalar("job_put_back", params))
        return AckResult(applied, len(jobs) - applied)

    def job_cancel_running_many(self, checkpoints: Sequence[Checkpoint]) -> AckResult:
        if not checkpoints:
            return AckResult(0, 0)
        params = _columns(checkpoints)

        def body(c: Conn) -> int:
            applied = int(self._one(c, "job_cancel_running", params)[0])
            if applied:  # workflows' steps ended (offload/store/_workflows.py)
                workflows.advance_jobs(self, c, [cp.id for cp in checkpoints])
            return applied

        applied = int(self._run("job_cancel_running", body, idempotent=False, transaction=True))
        return AckResult(applied, len(checkpoints) - applied)

    def job_stop_requests(self, leases: Sequence[Lease]) -> dict[int, str]:
        if not leases:
            return {}
        params = {"ids": [x.id for x in leases], "tokens": [x.token for x in leases]}
        return {r[0]: r[1] for r in self._rows("job_stop_requests", params)}

    def job_request_stop(self, job_id: int, request: str) -> bool:
        return bool(self._count("job_request_stop", {"id": int(job_id), "request": request}))
