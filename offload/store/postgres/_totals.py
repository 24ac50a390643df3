"""The PostgreSQL engine's totals family: event totals by queue and kind, and named counters.

A discard and the pruner delete rows and add what they counted to `offload_totals` in one
statement (data-modifying CTEs, `_admin.py` and `_maintenance.py`), so a total never drops or
doubles (offload/store/_totals.py). Other families count through `counter_add`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from offload.store._totals import JobTotal, TotalsOps, from_rows, summed
from offload.store.postgres._core import Conn, PostgresCore


def folded(ex: PostgresCore, c: Conn, name: str) -> list[Any]:
    """The rows of the query `name` after folding the counts' deltas (0016_counts.sql): two
    statements, so the read's snapshot has the fold in it. The fold is upkeep: the read adds
    unfolded deltas up anyway, so it is left out in a caller's transaction (a failed statement
    would abort it), and a store that cannot write now (a full disk, a read-only replica or
    role) is still read."""
    if ex._binding is None:
        try:
            c.execute(ex._q["counts_fold"])
        except (
            psycopg.errors.DiskFull,
            psycopg.errors.ReadOnlySqlTransaction,
            psycopg.errors.InsufficientPrivilege,
        ):
            pass
    return c.execute(ex._q[name]).fetchall()


def counter_add(ex: PostgresCore, name: str, amount: int) -> None:
    """Add to a named counter on this executor."""
    ex._exec("counter_add", {"name": name, "amount": int(amount)}, idempotent=False)


class PostgresTotals(PostgresCore, TotalsOps):
    """Event totals and named counters."""

    def job_totals(self) -> list[JobTotal]:
        return from_rows(self._run("job_totals", lambda c: folded(self, c, "job_totals")))

    def counts_fold(self) -> int:
        return self._count("counts_fold")

    def job_totals_add(self, deltas: Sequence[JobTotal]) -> None:
        rows = summed(deltas)
        if not rows:
            return
        params = {
            "queue": [d.queue for d in rows],
            "kind": [d.kind for d in rows],
            "event": [d.event for d in rows],
            "value": [d.value for d in rows],
        }
        self._exec("totals_add", params, idempotent=False)

    def counter_add(self, name: str, amount: int) -> None:
        counter_add(self, name, amount)

    def counters(self) -> dict[str, int]:
        return {name: int(value) for name, value in self._rows("counters")}
