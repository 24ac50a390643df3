"""The PostgreSQL engine's pauses family: paused queues and kinds (offload/store/_pauses.py).

A pause and the stop requests of its running jobs are one statement (data-modifying CTEs); so
are a resume, its taking back of those requests and the wake-up of the resumed queue's workers
(`pg_notify`), each committing by itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from offload.store._pauses import Pause, PauseAdded, PauseOps, check_pause
from offload.store.postgres._core import PostgresCore
from offload.store.postgres._values import plain_text


class PostgresPauses(PostgresCore, PauseOps):
    """Paused queues and kinds."""

    def pause_add(self, scope: str, name: str, by: str = "", reason: str = "") -> PauseAdded:
        check_pause(scope, name, reason)
        params = {
            "scope": scope,
            "name": name,
            "by": plain_text(str(by)),
            "reason": plain_text(str(reason)),
        }
        for _ in range(2):  # a concurrent first pause may hide its row from this statement
            rows = self._rows("pause_add", params, idempotent=True)
            if rows:
                r = rows[0]
                return PauseAdded(_pause(r), bool(r[5]), int(r[6]))
        raise RuntimeError(f"pausing {scope} {name!r} found no row")  # pragma: no cover

    def pause_remove(self, scope: str, name: str) -> bool:
        check_pause(scope, name)
        params = {"scope": scope, "name": name, "channel": self.channel}
        return bool(self._rows("pause_remove", params, idempotent=True)[0][0])

    def pause_stop_running(self) -> int:
        return self._count("pause_stop_paused", {}, idempotent=True)

    def pause_list(self) -> list[Pause]:
        return [_pause(r) for r in self._rows("pause_list")]


def _pause(r: Sequence[Any]) -> Pause:
    return Pause(str(r[0]), str(r[1]), str(r[2]), float(r[3]), str(r[4]))
