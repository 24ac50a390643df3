"""The SQLite engine's admin family: read and list jobs, retry or cancel one, count them, and
the named counters."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from offload.store._codec import dumps, read
from offload.store._contract import JobFilter, JobRecord, QueueCount
from offload.store._totals import span_edge
from offload.store.sqlite import _workflows as workflows
from offload.store.sqlite._base import SQLiteBase

# A listing of states that hold at most this many jobs reads them through the state index and
# sorts them; of more, it walks the table backwards by id, where they are dense enough to stop
# early. Either way, listing a rare state (dead jobs among millions) does not read the table.
FEW = 20_000
_ANY_STATE = "(:states IS NULL OR state IN (SELECT value FROM json_each(:states)))"


def _by_state(job_list: str) -> str:
    """The query `job_list` that reads the jobs of the given states through the state index."""
    assert _ANY_STATE in job_list and "FROM offload_jobs\n" in job_list
    return job_list.replace(
        "FROM offload_jobs\n", "FROM offload_jobs INDEXED BY offload_jobs_state_kind\n"
    ).replace(_ANY_STATE, "state IN (SELECT value FROM json_each(:states))")


class SQLiteAdmin(SQLiteBase):
    """The admin family on the SQLite engine."""

    def job_get(self, job_id: int) -> JobRecord | None:
        rows = self._read(self._q["job_get"], (job_id,))
        return record(rows[0]) if rows else None

    def job_list(self, flt: JobFilter) -> list[JobRecord]:
        params = {
            "states": None if flt.states is None else dumps(list(flt.states)),
            "queue": flt.queue,
            "kind": flt.kind,
            "tenants": None if flt.tenants is None else dumps(list(flt.tenants)),
            "before_id": flt.before_id,
            "limit": flt.limit,
        }
        query = self._q["job_list"]
        if params["states"] is not None:
            few = self._read(self._q["jobs_in_states"], (params["states"],))[0][0] <= FEW
            query = _by_state(query) if few else query
        return [record(r) for r in self._read(query, params)]

    def job_retry(self, job_id: int) -> bool:
        sql = self._q["job_retry"]

        def body(c: sqlite3.Connection) -> bool:
            now = self.now()
            retried = bool(c.execute(sql, (now, job_id)).rowcount)
            if retried:  # a workflow's step runs again (offload/store/_workflows.py)
                workflows.reopen_job(c, job_id, now)
            return retried

        retried = self._tx(body)
        return self._rung(retried, retried)

    def job_cancel(self, job_id: int) -> bool:
        sql = self._q["job_cancel"]

        def body(c: sqlite3.Connection) -> bool:
            now = self.now()
            cancelled = bool(c.execute(sql, (now, job_id)).rowcount)
            if cancelled:  # a workflow's step ended (offload/store/_workflows.py)
                workflows.advance_jobs(c, [job_id], now)
            return cancelled

        return self._tx(body)

    def job_counts(self) -> list[QueueCount]:
        return [QueueCount(q, s, n) for q, s, n in self._read(self._q["job_counts"])]

    def job_finished_since(self, since: float) -> dict[str, int]:
        out = {"completed": 0, "dead": 0, "retryable": 0}
        params = {"since": float(since), "edge": span_edge(since)}
        for state, n in self._read(self._q["job_finished_since"], params):
            out[state] = int(n)
        return out

    def counter_add(self, name: str, amount: int) -> None:
        sql = self._q["counter_add"]
        self._tx(lambda c: c.execute(sql, (name, amount)))

    def counters(self) -> dict[str, int]:
        return {name: value for name, value in self._read(self._q["counters"])}


def record(r: Sequence[Any]) -> JobRecord:
    """A row of job_get or job_list, its text columns as blobs (store/_codec.py decodes them,
    and names any field it cannot decode)."""
    values, undecodable = read(
        {
            "kind": r[1],
            "queue": r[2],
            "args": r[3],
            "meta": r[4],
            "tenant": r[5],
            "state": r[6],
            "delivery": r[11],
            "errors": r[13],
            "unique_key": r[15],
            "lease_owner": r[16],
            "result": r[19],
            "limit_key": r[26],
            "cursor": r[28],
        },
        decoded=False,
    )
    return JobRecord(
        id=r[0],
        priority=r[7],
        attempt=r[8],
        max_attempts=r[9],
        crashes=r[10],
        timeout=r[12],
        scheduled_at=r[14],
        lease_token=r[17],
        lease_expires_at=r[18],
        result_ttl=r[20],
        inserted_at=r[21],
        attempted_at=r[22],
        finished_at=r[23],
        order_key=r[24],
        deadline=r[25],
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
