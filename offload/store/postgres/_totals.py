"""The PostgreSQL engine's event totals and job discard (mixed into PostgresStore).

A discard and the pruner delete rows and add what they counted to `offload_totals` in one
statement (data-modifying CTEs), so a total never drops or doubles (offload/store/_totals.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from offload.store._sql import queries
from offload.store._totals import JobTotal, TotalsOps, from_rows, summed

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")


class PostgresTotals(TotalsOps):
    """Totals and discards on top of the PostgreSQL engine's pool and statement runner."""

    if TYPE_CHECKING:

        def _expand(self, text: str) -> str: ...
        def _run(
            self,
            what: str,
            body: Callable[[psycopg.Connection[Any]], T],
            *,
            idempotent: bool = True,
            transaction: bool = False,
        ) -> T: ...

    @property
    def _t(self) -> dict[str, str]:
        cached: dict[str, str] | None = getattr(self, "_totals_queries", None)
        if cached is None:
            cached = {k: self._expand(v) for k, v in queries("postgres", "totals").items()}
            self._totals_queries = cached
        return cached

    def job_discard(self, job_id: int) -> bool:
        sql = self._t["job_discard"]
        params = {"id": int(job_id)}
        row = self._run("job_discard", lambda c: c.execute(sql, params).fetchone())
        return row is not None and int(row[0]) > 0

    def job_totals(self) -> list[JobTotal]:
        sql = self._t["job_totals"]
        return from_rows(self._run("job_totals", lambda c: c.execute(sql).fetchall()))

    def job_totals_add(self, deltas: Sequence[JobTotal]) -> None:
        rows = summed(deltas)
        if not rows:
            return
        sql = self._t["totals_add"]
        params = {
            "queue": [d.queue for d in rows],
            "kind": [d.kind for d in rows],
            "event": [d.event for d in rows],
            "value": [d.value for d in rows],
        }
        self._run("job_totals_add", lambda c: c.execute(sql, params), idempotent=False)
