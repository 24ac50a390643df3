"""What a subscriber and a consumer receive: `offload.Event`, and the `Batch` of events a
consumer group handles at once."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from offload.store._events import StoredEvent

if TYPE_CHECKING:
    from offload.events._consumer import Consumer


@dataclass(frozen=True, slots=True)
class Event:
    """One event of a topic: where it is in the log (`topic`, `partition`, `offset`), its
    `key`, its JSON `payload`, when it was published (`published_at`, UTC, by the store's
    clock) and its `meta` (`correlation_id`, and the job that published it, if one did)."""

    topic: str
    partition: int
    offset: int
    key: str | None
    payload: Any
    published_at: datetime
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, stored: StoredEvent) -> Event:
        return cls(
            stored.topic,
            stored.part,
            stored.position,
            stored.key,
            stored.payload,
            datetime.fromtimestamp(stored.published_at, UTC),
            stored.meta,
        )

    def to_json(self) -> dict[str, Any]:
        """The event as JSON (a subscription job's argument, an HTTP answer)."""
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "key": self.key,
            "payload": self.payload,
            "published_at": self.published_at.timestamp(),
            "meta": self.meta,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Event:
        return cls(
            str(data["topic"]),
            int(data["partition"]),
            int(data["offset"]),
            None if data.get("key") is None else str(data["key"]),
            data.get("payload"),
            datetime.fromtimestamp(float(data["published_at"]), UTC),
            dict(data.get("meta") or {}),
        )


class Batch(list[Event]):
    """The events of one partition that a consumer group handles at once, in offset order.

    The group's offset is committed after the handler returns. To make the handler's database
    effects and the offset commit together (exactly once), call `batch.commit(connection)`
    inside the handler's own transaction on the store's database: if the transaction rolls
    back, so does the commit, and the batch is delivered again."""

    def __init__(self, events: Iterable[Event], consumer: Consumer, job_id: int, token: int):
        super().__init__(events)
        self.consumer = consumer
        self.partition = self[0].partition if self else -1
        self.job_id = job_id
        self.token = token
        self.expect = -1
        self.committed = False

    @property
    def next_offset(self) -> int:
        """The offset the group reads next once this batch is committed."""
        return self[-1].offset + 1

    def commit(self, connection: Any) -> None:
        """Commit the group's offset past this batch in the transaction of `connection` (a
        store transaction from `app.transaction()`, or a connection of your own to the store's
        database). StoreError when the partition was lost meanwhile (its job's lease expired,
        or a replay moved the offset): the transaction must roll back."""
        self.consumer.commit_in(self, connection)
        self.committed = True
