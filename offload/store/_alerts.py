"""The store operations of lag signals and alerts (part of the contract).

Lag: the age of the oldest job waiting in a queue, read from the head of the queue's claim
index (an index range scan of at most `sample` rows, never the whole backlog). Alerts: rules
added at run time (`offload alerts add`), the state of every alert the leader evaluates
(firing or not, since when) and the history of its firing and resolved events. Each engine
implements these in its `_alerts.py` with its `alerts.sql`.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

FIRING = "firing"
RESOLVED = "resolved"
HEAD_SAMPLE = 1000  # jobs read from the head of a queue's claim order for its oldest job


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert rule kept in the store: alert `name` fires when `condition` (a name of
    offload/app/_alerts.py's conditions) on `target` (a queue or job type; None: any) crosses
    `threshold` for `for_seconds`; its events are posted to `webhook` when given."""

    name: str
    condition: str
    threshold: float
    target: str | None = None
    for_seconds: float = 0.0
    webhook: str | None = None
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class AlertState:
    """Where one alert stands: firing or not, since when, and the value last seen."""

    name: str
    firing: bool
    since: float | None
    value: float | None
    changed_at: float


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One entry of the alert history: `state` is 'firing' or 'resolved'."""

    id: int
    name: str
    state: str
    value: float | None
    threshold: float | None
    message: str
    at: float


class AlertOps(abc.ABC):
    """The part of the store contract for lag signals and alerts."""

    @abc.abstractmethod
    def queue_oldest(self, queues: Sequence[str], sample: int = HEAD_SAMPLE) -> dict[str, float]:
        """Per queue that has jobs available now, the `scheduled_at` of the oldest among the
        first `sample` in claim order (exact for a first-in first-out queue, and whenever
        fewer are waiting). Queues with none available are absent."""

    @abc.abstractmethod
    def queue_depth(self, queues: Sequence[str], cap: int) -> dict[str, int]:
        """Jobs available now per queue, each count stopping at `cap` (an index range scan of
        at most `cap` rows per queue, never a whole backlog)."""

    @abc.abstractmethod
    def alert_add(self, alert: StoredAlert) -> StoredAlert:
        """Store an alert rule, replacing one of the same name; return it as stored."""

    @abc.abstractmethod
    def alert_list(self) -> list[StoredAlert]:
        """The alert rules added at run time, by name."""

    @abc.abstractmethod
    def alert_remove(self, name: str) -> bool:
        """Delete an alert rule and its state; False when there is none of that name."""

    @abc.abstractmethod
    def alert_states(self) -> list[AlertState]:
        """The state of every alert evaluated so far, by name."""

    @abc.abstractmethod
    def alert_record(
        self, name: str, state: str, value: float | None, threshold: float | None, message: str
    ) -> AlertEvent:
        """Record that an alert fired or resolved: its state and a history entry, in one
        transaction, at the store's clock."""

    @abc.abstractmethod
    def alert_history(self, limit: int = 50, name: str | None = None) -> list[AlertEvent]:
        """The newest history entries first (of one alert when `name` is given)."""

    @abc.abstractmethod
    def alert_history_prune(self, before: float) -> int:
        """Delete history entries older than this time."""
