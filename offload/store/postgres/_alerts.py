"""The PostgreSQL engine's alerts family: the age of queues' oldest jobs (one statement for
every queue), alert rules, states and history (offload/store/_alerts.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from offload.store._alerts import (
    FIRING,
    HEAD_SAMPLE,
    AlertEvent,
    AlertOps,
    AlertState,
    StoredAlert,
)
from offload.store.postgres._core import PostgresCore
from offload.store.postgres._values import plain_text


class PostgresAlerts(PostgresCore, AlertOps):
    """Lag signals and alerts."""

    def queue_oldest(self, queues: Sequence[str], sample: int = HEAD_SAMPLE) -> dict[str, float]:
        wanted = list(dict.fromkeys(queues))
        if not wanted:
            return {}
        rows = self._rows("queue_oldest", {"queues": wanted, "sample": int(sample)})
        return {r[0]: float(r[1]) for r in rows if r[1] is not None}

    def queue_depth(self, queues: Sequence[str], cap: int) -> dict[str, int]:
        wanted = list(dict.fromkeys(queues))
        if not wanted:
            return {}
        rows = self._rows("queue_depth", {"queues": wanted, "cap": int(cap)})
        return {r[0]: int(r[1]) for r in rows}

    def alert_add(self, alert: StoredAlert) -> StoredAlert:
        params = {
            "name": plain_text(alert.name),
            "condition": alert.condition,
            "target": None if alert.target is None else plain_text(alert.target),
            "threshold": float(alert.threshold),
            "for_seconds": float(alert.for_seconds),
            "webhook": alert.webhook,
        }
        return stored_alert(self._rows("alert_add", params, idempotent=False)[0])

    def alert_list(self) -> list[StoredAlert]:
        return [stored_alert(r) for r in self._rows("alert_list")]

    def alert_remove(self, name: str) -> bool:
        return bool(self._scalar("alert_remove", {"name": name}))

    def alert_states(self) -> list[AlertState]:
        return [
            AlertState(r[0], bool(r[1]), r[2], r[3], float(r[4]))
            for r in self._rows("alert_states")
        ]

    def alert_record(
        self, name: str, state: str, value: float | None, threshold: float | None, message: str
    ) -> AlertEvent:
        params = {
            "name": name,
            "firing": state == FIRING,
            "state": state,
            "value": value,
            "threshold": threshold,
            "message": plain_text(message),
        }
        return alert_event(self._rows("alert_record", params, idempotent=False)[0])

    def alert_history(self, limit: int = 50, name: str | None = None) -> list[AlertEvent]:
        rows = self._rows("alert_history", {"name": name, "limit": int(limit)})
        return [alert_event(r) for r in rows]

    def alert_history_prune(self, before: float) -> int:
        return self._count("alert_history_prune", {"before": float(before)})


def stored_alert(r: Sequence[Any]) -> StoredAlert:
    return StoredAlert(r[0], r[1], float(r[2]), r[3], float(r[4]), r[5], float(r[6]))


def alert_event(r: Sequence[Any]) -> AlertEvent:
    value = None if r[3] is None else float(r[3])
    threshold = None if r[4] is None else float(r[4])
    return AlertEvent(int(r[0]), r[1], r[2], value, threshold, r[5], float(r[6]))
