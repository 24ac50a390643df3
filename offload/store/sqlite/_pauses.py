"""The SQLite engine's pauses family: paused queues and kinds (offload/store/_pauses.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from offload.store._pauses import Pause, PauseAdded, PauseOps, check_pause
from offload.store._sql import queries
from offload.store.sqlite._base import SQLiteBase


def pauses_sql() -> dict[str, str]:
    """The family's named queries, and the claim variants the jobs and dispatch families use
    while some kind is paused."""
    return queries("sqlite", "pauses")


class SQLitePauses(SQLiteBase, PauseOps):
    """The pauses family on the SQLite engine."""

    def pause_add(self, scope: str, name: str, by: str = "", reason: str = "") -> PauseAdded:
        check_pause(scope, name, reason)
        p = pauses_sql()
        key = {"scope": scope, "name": name}

        def body(c: sqlite3.Connection) -> PauseAdded:
            params = {**key, "by": str(by), "reason": str(reason), "now": self.now()}
            row = c.execute(p["pause_add"], params).fetchone()
            new = row is not None
            if row is None:
                row = c.execute(p["pause_get"], key).fetchone()
            stopping = c.execute(p["pause_stop_running"], key).rowcount
            return PauseAdded(_pause(row), new, stopping)

        return self._tx(body)

    def pause_remove(self, scope: str, name: str) -> bool:
        check_pause(scope, name)
        p = pauses_sql()
        key = {"scope": scope, "name": name}

        def body(c: sqlite3.Connection) -> bool:
            gone = c.execute(p["pause_remove"], key).rowcount > 0
            if gone:
                c.execute(p["pause_unstop_running"], key)
            return gone

        return self._tx(body)

    def pause_stop_running(self) -> int:
        sql = pauses_sql()["pause_stop_paused"]
        return int(self._tx(lambda c: c.execute(sql).rowcount))

    def pause_list(self) -> list[Pause]:
        return [_pause(r) for r in self._read(pauses_sql()["pause_list"])]


def _pause(r: Sequence[Any]) -> Pause:
    return Pause(str(r[0]), str(r[1]), str(r[2]), float(r[3]), str(r[4]))
