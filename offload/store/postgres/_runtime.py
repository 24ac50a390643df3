"""The PostgreSQL engine's run-time family: reports by kind of overruns and event-loop blocks
(offload/store/_runtime.py), one statement per batch, stamped with the database's clock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields

from offload.store._runtime import KindRunTime, RunTimeOps, RunTimeReport, from_row, merged
from offload.store.postgres._core import PostgresCore


class PostgresRunTime(PostgresCore, RunTimeOps):
    """Run-time reports by kind."""

    def kind_runtime_add(self, reports: Sequence[RunTimeReport]) -> None:
        rows = merged(reports)  # one row per kind: ON CONFLICT may update a row once
        if not rows:
            return
        params = {f.name: [getattr(r, f.name) for r in rows] for f in fields(RunTimeReport)}
        self._exec("runtime_add", params, idempotent=False)

    def kind_runtimes(self) -> list[KindRunTime]:
        return [from_row(r) for r in self._rows("kind_runtimes")]
