"""The SQLite engine's run-time family: reports by kind of overruns and event-loop blocks
(offload/store/_runtime.py), one upsert per kind, stamped with this machine's clock."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import asdict

from offload.store._runtime import KindRunTime, RunTimeOps, RunTimeReport, from_row, merged
from offload.store._sql import queries
from offload.store.sqlite._base import SQLiteBase


class SQLiteRunTime(SQLiteBase, RunTimeOps):
    """The run-time family on the SQLite engine."""

    def kind_runtime_add(self, reports: Sequence[RunTimeReport]) -> None:
        rows = merged(reports)
        if not rows:
            return
        sql = queries("sqlite", "runtime")["runtime_add"]

        def body(c: sqlite3.Connection) -> None:
            now = time.time()
            c.executemany(sql, [{**asdict(r), "now": now} for r in rows])

        self._tx(body)

    def kind_runtimes(self) -> list[KindRunTime]:
        return [from_row(r) for r in self._read(queries("sqlite", "runtime")["kind_runtimes"])]
