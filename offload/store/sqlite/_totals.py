"""The SQLite engine's totals family: event totals and discarding a job.

Rows deleted by a discard or the pruner come back from their DELETE (`RETURNING`), and what
they counted is added to `offload_totals` in the same transaction (offload/store/_totals.py):
`keep` does that for any family that deletes jobs.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from offload.store._sql import queries
from offload.store._totals import JobTotal, from_rows, row_events, summed
from offload.store.sqlite._base import SQLiteBase


def _t() -> dict[str, str]:
    return queries("sqlite", "totals")


def keep(c: sqlite3.Connection, gone: Iterable[Sequence[Any]]) -> None:
    """Add what deleted rows (queue, kind, state, attempt) had counted to the totals, in the
    transaction of `c` that deleted them."""
    deltas = summed(e for q, k, s, a in gone for e in row_events(q, k, s, 1, int(a)))
    if deltas:
        c.executemany(_t()["totals_add"], [(d.queue, d.kind, d.event, d.value) for d in deltas])


class SQLiteTotals(SQLiteBase):
    """The totals family on the SQLite engine."""

    def job_discard(self, job_id: int) -> bool:
        sql = _t()["job_discard"]

        def body(c: sqlite3.Connection) -> bool:
            gone = c.execute(sql, (int(job_id),)).fetchall()
            keep(c, gone)
            return bool(gone)

        return self._tx(body)

    def job_totals(self) -> list[JobTotal]:
        return from_rows(self._read(_t()["job_totals"]))

    def counts_fold(self) -> int:
        return 0  # the triggers of 0015_counts.sql update the counts in place

    def job_totals_add(self, deltas: Sequence[JobTotal]) -> None:
        rows = [(d.queue, d.kind, d.event, d.value) for d in summed(deltas)]
        if rows:
            sql = _t()["totals_add"]
            self._tx(lambda c: c.executemany(sql, rows))
