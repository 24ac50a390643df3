"""The SQLite engine's event totals and job discard (mixed into SQLiteStore).

Rows deleted by a discard or the pruner come back from their DELETE (`RETURNING`), and what
they counted is added to `offload_totals` in the same transaction (offload/store/_totals.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from offload.store._sql import queries
from offload.store._totals import JobTotal, TotalsOps, from_rows, row_events, summed

T = TypeVar("T")


class SQLiteTotals(TotalsOps):
    """Totals and discards on top of the SQLite engine's connections and transactions."""

    if TYPE_CHECKING:

        def _tx(self, body: Callable[[sqlite3.Connection], T], conn: Any = None) -> T: ...
        def _read(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]: ...

    @property
    def _t(self) -> dict[str, str]:
        return queries("sqlite", "totals")

    def _keep(self, c: sqlite3.Connection, gone: Iterable[Sequence[Any]]) -> None:
        """Add what deleted rows (queue, kind, state, attempt) had counted to the totals."""
        deltas = summed(e for q, k, s, a in gone for e in row_events(q, k, s, 1, int(a)))
        if deltas:
            c.executemany(
                self._t["totals_add"], [(d.queue, d.kind, d.event, d.value) for d in deltas]
            )

    def job_discard(self, job_id: int) -> bool:
        sql = self._t["job_discard"]

        def body(c: sqlite3.Connection) -> bool:
            gone = c.execute(sql, (int(job_id),)).fetchall()
            self._keep(c, gone)
            return bool(gone)

        return self._tx(body)

    def job_totals(self) -> list[JobTotal]:
        return from_rows(self._read(self._t["job_totals"]))

    def job_totals_add(self, deltas: Sequence[JobTotal]) -> None:
        rows = [(d.queue, d.kind, d.event, d.value) for d in summed(deltas)]
        if rows:
            sql = self._t["totals_add"]
            self._tx(lambda c: c.executemany(sql, rows))
