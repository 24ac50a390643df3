"""The SQLite engine's alerts family: the age of queues' oldest jobs, alert rules, states and
history (offload/store/_alerts.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from offload.store._alerts import FIRING, HEAD_SAMPLE, AlertEvent, AlertState, StoredAlert
from offload.store._sql import queries
from offload.store.sqlite._base import SQLiteBase


def _a() -> dict[str, str]:
    return queries("sqlite", "alerts")


class SQLiteAlerts(SQLiteBase):
    """The alerts family on the SQLite engine."""

    def queue_oldest(self, queues: Sequence[str], sample: int = HEAD_SAMPLE) -> dict[str, float]:
        sql = _a()["queue_oldest"]
        out: dict[str, float] = {}
        for queue in dict.fromkeys(queues):
            row = self._read(sql, {"queue": queue, "sample": int(sample)})
            if row and row[0][0] is not None:
                out[queue] = float(row[0][0])
        return out

    def queue_depth(self, queues: Sequence[str], cap: int) -> dict[str, int]:
        sql = _a()["queue_depth"]
        return {
            q: int(self._read(sql, {"queue": q, "cap": int(cap)})[0][0])
            for q in dict.fromkeys(queues)
        }

    def alert_add(self, alert: StoredAlert) -> StoredAlert:
        sql = _a()["alert_add"]
        params = {
            "name": alert.name,
            "condition": alert.condition,
            "target": alert.target,
            "threshold": float(alert.threshold),
            "for_seconds": float(alert.for_seconds),
            "webhook": alert.webhook,
        }
        row = self._tx(lambda c: c.execute(sql, {**params, "now": self.now()}).fetchone())
        return stored_alert(row)

    def alert_list(self) -> list[StoredAlert]:
        return [stored_alert(r) for r in self._read(_a()["alert_list"])]

    def alert_remove(self, name: str) -> bool:
        a = _a()

        def body(c: sqlite3.Connection) -> bool:
            gone = c.execute(a["alert_remove"], (name,)).rowcount
            c.execute(a["alert_state_remove"], (name,))
            return bool(gone)

        return self._tx(body)

    def alert_states(self) -> list[AlertState]:
        return [alert_state(r) for r in self._read(_a()["alert_states"])]

    def alert_record(
        self, name: str, state: str, value: float | None, threshold: float | None, message: str
    ) -> AlertEvent:
        a = _a()

        def body(c: sqlite3.Connection) -> AlertEvent:
            now = self.now()
            firing = state == FIRING
            c.execute(
                a["alert_state_set"], {"name": name, "firing": firing, "value": value, "now": now}
            )
            params = {
                "name": name,
                "state": state,
                "value": value,
                "threshold": threshold,
                "message": message,
                "now": now,
            }
            return alert_event(c.execute(a["alert_event_add"], params).fetchone())

        return self._tx(body)

    def alert_history(self, limit: int = 50, name: str | None = None) -> list[AlertEvent]:
        rows = self._read(_a()["alert_history"], {"name": name, "limit": int(limit)})
        return [alert_event(r) for r in rows]

    def alert_history_prune(self, before: float) -> int:
        sql = _a()["alert_history_prune"]
        return int(self._tx(lambda c: c.execute(sql, (float(before),)).rowcount))


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def stored_alert(r: Sequence[Any]) -> StoredAlert:
    return StoredAlert(
        name=r[0],
        condition=r[1],
        threshold=float(r[2]),
        target=r[3],
        for_seconds=float(r[4]),
        webhook=r[5],
        created_at=float(r[6]),
    )


def alert_state(r: Sequence[Any]) -> AlertState:
    return AlertState(r[0], bool(r[1]), _float(r[2]), _float(r[3]), float(r[4]))


def alert_event(r: Sequence[Any]) -> AlertEvent:
    return AlertEvent(int(r[0]), r[1], r[2], _float(r[3]), _float(r[4]), r[5], float(r[6]))
