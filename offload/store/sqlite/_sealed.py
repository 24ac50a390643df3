"""The SQLite engine's re-encryption family (offload/store/_sealed.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from offload._errors import PayloadDecodeError
from offload.store._codec import decode, dumps, text
from offload.store._sealed import Reseal, SealedOps, SealedRow
from offload.store._sql import queries
from offload.store.sqlite._base import SQLiteBase


class SQLiteSealed(SQLiteBase, SealedOps):
    """Encrypted jobs read page by page and written back compare-and-set."""

    def job_sealed_page(self, after_id: int, limit: int) -> list[SealedRow]:
        sql = queries("sqlite", "sealed")["job_sealed_page"]
        rows = self._read(sql, {"after": int(after_id), "limit": int(limit)})
        return [row for r in rows if (row := _row(r)) is not None]

    def job_reseal_many(self, reseals: Sequence[Reseal]) -> int:
        if not reseals:
            return 0
        sql = queries("sqlite", "sealed")["job_reseal"]
        params = [
            {
                "id": r.row.id,
                "args": dumps(r.args),
                "result": None if r.result is None else dumps(r.result),
                "old_args": r.row.stored[0],
                "old_result": r.row.stored[1],
            }
            for r in reseals
        ]

        def body(c: sqlite3.Connection) -> int:
            return sum(c.execute(sql, p).rowcount for p in params)

        return self._tx(body)


def _row(r: Sequence[Any]) -> SealedRow | None:
    try:
        kind = text("kind", r[1])
        args = decode("args", r[2])
        result = decode("result", r[3])
        meta = decode("meta", r[4])
    except PayloadDecodeError:
        return None
    assert kind is not None
    return SealedRow(int(r[0]), kind, args, result, meta, (r[2], r[3]))
