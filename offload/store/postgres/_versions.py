"""The PostgreSQL engine's versions family (offload/store/_versions.py): jobs counted per kind
and argument version, and claimed jobs of a newer version given back, one statement each."""

from __future__ import annotations

from collections.abc import Sequence

from offload._text import printable
from offload.store._versions import PENDING_STATES, Refusal, VersionCount, VersionOps
from offload.store.postgres._core import PostgresCore


class PostgresVersions(PostgresCore, VersionOps):
    """The versions family on the PostgreSQL engine."""

    def job_versions(
        self, kind: str | None = None, states: Sequence[str] = PENDING_STATES
    ) -> list[VersionCount]:
        rows = self._rows("job_versions", {"states": list(states), "kind": kind})
        return [VersionCount(str(k), int(v), str(s), int(n)) for k, v, s, n in rows]

    def job_refuse_many(self, refusals: Sequence[Refusal]) -> int:
        if not refusals:
            return 0
        params = {
            "ids": [r.id for r in refusals],
            "tokens": [r.token for r in refusals],
            "errors": [printable(r.error) for r in refusals],
            "retry_in": [float(r.retry_in) for r in refusals],
            "channel": self.channel,
        }
        rows = self._rows("job_refuse", params, idempotent=False)
        return int(rows[0][0])
