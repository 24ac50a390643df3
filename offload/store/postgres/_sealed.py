"""The PostgreSQL engine's re-encryption family (offload/store/_sealed.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from offload._errors import PayloadDecodeError
from offload.store._codec import check, dumps
from offload.store._sealed import Reseal, SealedOps, SealedRow
from offload.store.postgres._core import Conn, PostgresCore


class PostgresSealed(PostgresCore, SealedOps):
    """Encrypted jobs read page by page and written back compare-and-set."""

    def job_sealed_page(self, after_id: int, limit: int) -> list[SealedRow]:
        rows = self._rows("job_sealed_page", {"after": int(after_id), "limit": int(limit)})
        return [row for r in rows if (row := _row(r)) is not None]

    def job_reseal_many(self, reseals: Sequence[Reseal]) -> int:
        if not reseals:
            return 0
        query = self._q["job_reseal"]
        params = [
            {
                "id": r.row.id,
                "args": dumps(r.args),
                "result": None if r.result is None else dumps(r.result),
                "old_args": dumps(r.row.stored[0]),
                "old_result": None if r.row.stored[1] is None else dumps(r.row.stored[1]),
            }
            for r in reseals
        ]

        def body(c: Conn) -> int:
            return sum(c.execute(query, p).rowcount for p in params)

        return int(self._run("job_reseal", body, transaction=True))


def _row(r: Sequence[Any]) -> SealedRow | None:
    try:
        args = check("args", r[2])
        result = check("result", r[3])
        meta = check("meta", r[4])
    except PayloadDecodeError:
        return None
    return SealedRow(int(r[0]), str(r[1]), args, result, meta, (r[2], r[3]))
