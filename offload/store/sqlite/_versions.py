"""The SQLite engine's versions family (offload/store/_versions.py): jobs counted per kind and
argument version, and claimed jobs of a newer version given back."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from offload.store._codec import dumps, error_entry
from offload.store._sql import queries
from offload.store._versions import PENDING_STATES, Refusal, VersionCount, VersionOps
from offload.store.sqlite._base import SQLiteBase


class SQLiteVersions(SQLiteBase, VersionOps):
    """The versions family on the SQLite engine."""

    def job_versions(
        self, kind: str | None = None, states: Sequence[str] = PENDING_STATES
    ) -> list[VersionCount]:
        sql = queries("sqlite", "versions")["job_versions"]
        rows = self._read(sql, {"states": dumps(list(states)), "kind": kind})
        return [VersionCount(str(k), int(v), str(s), int(n)) for k, v, s, n in rows]

    def job_refuse_many(self, refusals: Sequence[Refusal]) -> int:
        if not refusals:
            return 0
        sql = queries("sqlite", "versions")["job_refuse"]

        def body(c: sqlite3.Connection) -> int:
            now = self.now()
            return sum(
                c.execute(
                    sql,
                    {
                        "id": r.id,
                        "token": r.token,
                        "now": now,
                        "retry_at": now + r.retry_in,
                        "entry": error_entry(0, now, r.error, "", "version"),
                    },
                ).rowcount
                for r in refusals
            )

        refused = self._tx(body)
        return self._rung(refused, refused > 0)
