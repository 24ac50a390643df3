"""The SQLite engine's long-job operations (part of the jobs family): an iteration job's state
at the start of a run, checkpoints, putting a stopped job back, ending one cancelled, and stop
requests (docs/long-jobs.md). None of them is on an ordinary job's path."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from offload.store._codec import dumps, read
from offload.store._contract import AckResult, Checkpoint, IterationState, Lease, PutBack
from offload.store.sqlite import _workflows as workflows
from offload.store.sqlite._base import SQLiteBase


def _cursor_text(cp: Checkpoint) -> str | None:
    return None if not cp.has_cursor or cp.cursor is None else dumps(cp.cursor)


def _named(cp: Checkpoint, now: float) -> dict[str, Any]:
    return {
        "id": cp.id,
        "token": cp.token,
        "has": int(cp.has_cursor),
        "cursor": _cursor_text(cp),
        "done": cp.done,
        "total": cp.total,
        "now": now,
    }


class SQLiteLongJobs(SQLiteBase):
    """Long-job operations on the SQLite engine."""

    def job_iteration_state(self, lease: Lease) -> IterationState | None:
        rows = self._read(self._q["job_iteration_state"], (lease.id, lease.token))
        if not rows:
            return None
        stored, done, total, request = rows[0]
        values, bad = read({"cursor": stored}, decoded=False)
        if bad:  # a cursor that cannot be read: the run starts over rather than not at all
            values = {"cursor": None}
        return IterationState(values["cursor"], done, total, request)

    def job_checkpoint_many(self, checkpoints: Sequence[Checkpoint]) -> dict[int, str | None]:
        if not checkpoints:
            return {}
        sql = self._q["job_checkpoint"]
        batch = dumps(
            [
                [c.id, c.token, int(c.has_cursor), _cursor_text(c), c.done, c.total, c.remaining]
                for c in checkpoints
            ]
        )

        def body(c: sqlite3.Connection) -> dict[int, str | None]:
            return {row[0]: row[1] for row in c.execute(sql, (self.now(), batch))}

        return self._tx(body)

    def job_put_back_many(self, jobs: Sequence[PutBack]) -> AckResult:
        if not jobs:
            return AckResult(0, 0)
        sql = self._q["job_put_back"]
        now_available = [False]

        def body(c: sqlite3.Connection) -> int:
            now = self.now()
            applied = 0
            now_available[0] = False
            for job in jobs:
                delay = max(float(job.delay), 0.0)
                changed = c.execute(sql, {**_named(job.checkpoint, now), "delay": delay}).rowcount
                applied += changed
                now_available[0] = now_available[0] or (changed > 0 and delay == 0)
            return applied

        applied = self._tx(body)
        self._rung(applied, now_available[0])
        return AckResult(applied, len(jobs) - applied)

    def job_cancel_running_many(self, checkpoints: Sequence[Checkpoint]) -> AckResult:
        if not checkpoints:
            return AckResult(0, 0)
        sql = self._q["job_cancel_running"]

        def body(c: sqlite3.Connection) -> int:
            now = self.now()
            applied = sum(c.execute(sql, _named(cp, now)).rowcount for cp in checkpoints)
            if applied:  # workflows' steps ended (offload/store/_workflows.py)
                workflows.advance_jobs(c, [cp.id for cp in checkpoints], now)
            return applied

        applied = self._tx(body)
        return AckResult(applied, len(checkpoints) - applied)

    def job_stop_requests(self, leases: Sequence[Lease]) -> dict[int, str]:
        if not leases:
            return {}
        batch = dumps([[lease.id, lease.token] for lease in leases])
        return {row[0]: row[1] for row in self._read(self._q["job_stop_requests"], (batch,))}

    def job_request_stop(self, job_id: int, request: str) -> bool:
        sql = self._q["job_request_stop"]
        return bool(self._tx(lambda c: c.execute(sql, (int(job_id), request)).rowcount))
