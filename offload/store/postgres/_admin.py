"""The PostgreSQL engine's admin family: what operators and the CLI do to jobs (read, list,
count, retry, cancel, discard)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from offload.store._codec import read
from offload.store._contract import JobFilter, JobRecord, QueueCount
from offload.store._totals import span_edge
from offload.store.postgres import _workflows as workflows
from offload.store.postgres._core import Conn, PostgresCore
from offload.store.postgres._totals import folded


class PostgresAdmin(PostgresCore):
    """Admin operations."""

    def job_get(self, job_id: int) -> JobRecord | None:
        rows = self._rows("job_get", {"id": job_id})
        return _record(rows[0]) if rows else None

    def job_list(self, flt: JobFilter) -> list[JobRecord]:
        params = {
            "states": None if flt.states is None else list(flt.states),
            "queue": flt.queue,
            "kind": flt.kind,
            "tenants": None if flt.tenants is None else list(flt.tenants),
            "before_id": flt.before_id,
            "limit": int(flt.limit),
        }
        query = self._q["job_list"]
        # Its optional filters want a plan for the values at hand: a generic one scans the
        # table backwards by id (seconds for a rare state among millions of jobs). An
        # unprepared statement is planned for its values every time, in any transaction.
        rows = self._run("job_list", lambda c: c.execute(query, params, prepare=False).fetchall())
        return [_record(r) for r in rows]

    def job_retry(self, job_id: int) -> bool:
        params = {"id": job_id, "channel": self.channel}

        def body(c: Conn) -> bool:
            retried = bool(self._one(c, "job_retry", params)[0])
            if retried:  # a workflow's step runs again (offload/store/_workflows.py)
                workflows.reopen_job(self, c, job_id)
            return retried

        return bool(self._run("job_retry", body, idempotent=False, transaction=True))

    def job_cancel(self, job_id: int) -> bool:
        def body(c: Conn) -> bool:
            cancelled = bool(c.execute(self._q["job_cancel"], {"id": job_id}).rowcount)
            if cancelled:  # a workflow's step ended (offload/store/_workflows.py)
                workflows.advance_jobs(self, c, [job_id])
            return cancelled

        return bool(self._run("job_cancel", body, idempotent=False, transaction=True))

    def job_discard(self, job_id: int) -> bool:
        rows = self._rows("job_discard", {"id": int(job_id)})
        return bool(rows) and int(rows[0][0]) > 0

    def job_counts(self) -> list[QueueCount]:
        rows = self._run("job_counts", lambda c: folded(self, c, "job_counts"))
        return [QueueCount(q, s, int(n)) for q, s, n in rows]

    def job_finished_since_each(self, sinces: Sequence[float]) -> list[dict[str, int]]:
        out = [{"completed": 0, "dead": 0, "retryable": 0} for _ in sinces]
        if not sinces:
            return out
        params = {
            "i": list(range(len(sinces))),
            "since": [float(t) for t in sinces],
            "edge": [span_edge(t) for t in sinces],
        }
        for i, state, n in self._rows("job_finished_since_each", params):
            out[i][state] += int(n)
        return out

    def job_finished_since(self, since: float) -> dict[str, int]:
        out = {"completed": 0, "dead": 0, "retryable": 0}
        params = {"since": float(since), "edge": span_edge(since)}
        for state, n in self._rows("job_finished_since", params):
            out[state] = int(n)
        return out


def _record(r: Sequence[Any]) -> JobRecord:
    """A row of job_get or job_list; its jsonb fields, decoded by psycopg, are checked for
    shape by store/_codec.py, which names any that is wrong."""
    values, undecodable = read(
        {"args": r[3], "meta": r[4], "errors": r[13], "result": r[19], "cursor": r[28]},
        decoded=True,
    )
    return JobRecord(
        id=r[0],
        kind=r[1],
        queue=r[2],
        tenant=r[5],
        state=r[6],
        priority=r[7],
        attempt=r[8],
        max_attempts=r[9],
        crashes=r[10],
        delivery=r[11],
        timeout=r[12],
        scheduled_at=r[14],
        unique_key=r[15],
        lease_owner=r[16],
        lease_token=r[17],
        lease_expires_at=r[18],
        result_ttl=r[20],
        inserted_at=r[21],
        attempted_at=r[22],
        finished_at=r[23],
        order_key=r[24],
        deadline=r[25],
        limit_key=r[26],
        expires_at=r[27],
        progress_done=r[29],
        progress_total=r[30],
        progress_eta=r[31],
        stop_request=r[32],
        version=r[33],
        parent_id=r[34],
        root_id=r[35],
        undecodable=undecodable,
        **values,
    )
