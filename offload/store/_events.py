"""The store operations of events (part of the contract): topics as append-only logs of
partitions, and consumer groups' positions in them (docs/events.md).

`Store` inherits these; each engine implements the primitives in its `_events.py` mixin with
the SQL of its `events.sql`, and the operations that span families (a handover that inserts the
next job of a partition, a group's start) are written once here on top of them, in one store
transaction.

Offsets are gap-free and monotonic per partition: a partition's `head` (the offset its next
event gets) is a row updated in the publish's own transaction, which holds that row until it
commits (PostgreSQL) or holds the one writer lock (SQLite). A publisher to the same partition
waits for the previous one to commit or roll back, so a reader never sees offset n + 1 before
offset n has committed, and a rolled-back publish leaves no hole.

A consumer group's position in a partition (`next_offset`: the next offset to read) is
changed only by the job that holds the partition (`job_id`) while its lease is valid, and only
from the position it read (compare and set): a worker that lost its lease, or a batch that a
replay made stale, commits nothing, in its own transaction or the caller's.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from offload._errors import ConfigurationError
from offload._states import FINAL_STATES

if TYPE_CHECKING:
    from offload.store._contract import NewJob, Store

__all__ = [
    "EventOps",
    "GroupPosition",
    "NewEvent",
    "PartitionInfo",
    "Placed",
    "Pruned",
    "SubscriptionRecord",
    "StoredEvent",
    "TopicSpec",
]


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic as declared: its name, number of partitions and retention (seconds of age,
    events kept per partition; None: no limit of that kind)."""

    name: str
    partitions: int
    retention_seconds: float | None = None
    retention_events: int | None = None


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append to one partition: its key and its payload and meta as JSON text,
    and the publisher's idempotency key (an event of the topic with the same one is returned
    instead of appending again, for as long as that event is kept)."""

    part: int
    key: str | None
    payload_json: str
    meta_json: str = "{}"
    idem_key: str | None = None


@dataclass(frozen=True, slots=True)
class Placed:
    """Where an appended event went: its partition, its offset and its publish time;
    `duplicate`: an event with its idempotency key was there already (this is that one)."""

    part: int
    position: int
    published_at: float
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One event of the log as the store holds it."""

    topic: str
    part: int
    position: int
    key: str | None
    payload: Any
    meta: dict[str, Any]
    published_at: float


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    """A partition's state: the offset its next event gets (`head`), the first offset still
    kept (`first`, = head when empty) and how many events it keeps (retention deletes a
    prefix, so head - first)."""

    topic: str
    part: int
    head: int
    first: int
    count: int


@dataclass(frozen=True, slots=True)
class GroupPosition:
    """A consumer group's place in one partition: the next offset it reads, the job holding
    the partition (None: none yet) and that job's state (None: no such job)."""

    topic: str
    group: str
    part: int
    next_offset: int
    job_id: int | None = None
    job_state: str | None = None
    head: int = 0

    @property
    def lag(self) -> int:
        """Events published to the partition that the group has not read yet."""
        return max(self.head - self.next_offset, 0)


@dataclass(frozen=True, slots=True)
class SubscriptionRecord:
    """A subscription recorded in the store: the offset per partition it gets jobs from."""

    topic: str
    name: str
    starts: dict[int, int]
    created_at: float


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one retention round removed: events, and of those the ones a group had not read."""

    removed: int = 0
    unconsumed: int = 0
    by_topic: dict[str, int] = field(default_factory=dict)


class EventOps(abc.ABC):
    """The part of the store contract for topics, events and consumer groups."""

    # --- primitives, one per engine --------------------------------------------------
    @abc.abstractmethod
    def topic_ensure(self, spec: TopicSpec) -> TopicSpec:
        """Record a topic and its partitions if missing (partitions only ever grow; the
        retention given replaces the stored one); the topic as stored."""

    @abc.abstractmethod
    def topic_specs(self) -> list[TopicSpec]:
        """Every stored topic, by name."""

    @abc.abstractmethod
    def event_append(self, topic: str, events: Sequence[NewEvent]) -> list[Placed]:
        """Append events to their partitions in one transaction, in the order given within
        each partition; where each went, in the order given. The partitions must exist
        (`topic_ensure`). An event whose idempotency key the topic holds already is not
        appended: its place is the earlier event's (checked under the partition's lock, so
        two publishes with one key to one partition append once)."""

    async def event_append_async(
        self, topic: str, events: Sequence[NewEvent], conn: Any
    ) -> list[Placed]:
        """`event_append` in the transaction of a caller's async connection, through the async
        driver (as `job_insert_many_async`). Engines without an async driver refuse it."""
        raise ConfigurationError(
            f"the {cast('Store', self).engine} store cannot publish on an async connection "
            f"({type(conn).__module__}.{type(conn).__name__}); publish on a connection of its "
            "own driver, or use a PostgreSQL store with a psycopg AsyncConnection"
        )

    @abc.abstractmethod
    def event_read(self, topic: str, part: int, after: int, limit: int) -> list[StoredEvent]:
        """Up to `limit` events of a partition with an offset above `after`, in offset
        order."""

    @abc.abstractmethod
    def event_offset_at(self, topic: str, part: int, since: float) -> int:
        """The offset of the partition's first kept event published at or after `since`
        (epoch seconds): its head when there is none."""

    @abc.abstractmethod
    def partition_list(self, topic: str | None = None) -> list[PartitionInfo]:
        """Every partition (of one topic), by topic then partition."""

    @abc.abstractmethod
    def group_lock(self, topic: str, group: str, part: int, start: int) -> GroupPosition:
        """A group's position in a partition, made at `start` if missing, and held for the
        rest of the transaction (PostgreSQL: row locked), with its job's state."""

    @abc.abstractmethod
    def group_set_job(self, topic: str, group: str, part: int, job_id: int) -> None:
        """Make `job_id` the holder of a group's partition."""

    @abc.abstractmethod
    def group_fenced(self, topic: str, group: str, part: int, job_id: int, token: int) -> bool:
        """Whether job `job_id` holds the group's partition and is running under lease
        `token`; the position is held for the rest of the transaction when so."""

    @abc.abstractmethod
    def group_commit(
        self,
        topic: str,
        group: str,
        part: int,
        job_id: int,
        token: int,
        expect: int,
        next_offset: int,
    ) -> bool:
        """Move a group's position in a partition from `expect` to `next_offset`, fenced: only
        job `job_id` running under lease `token` and holding the partition, and only from the
        position it read. False: nothing changed (the lease or the partition was lost, or a
        replay moved the position)."""

    @abc.abstractmethod
    def group_positions(
        self, topic: str | None = None, group: str | None = None
    ) -> list[GroupPosition]:
        """Every group's position in every partition (of a topic, of a group), with the
        partition's head; by topic, group, partition."""

    @abc.abstractmethod
    def group_set(self, topic: str, group: str, positions: Mapping[int, int]) -> int:
        """Set a group's next offsets by partition (replay); how many partitions changed. A
        batch in flight then commits nothing (its expected position is gone)."""

    @abc.abstractmethod
    def event_prune(self, spec: TopicSpec, now: float, keep_unconsumed: bool) -> Pruned:
        """Delete a topic's events past its retention (older than `retention_seconds`, beyond
        the last `retention_events` of a partition). `keep_unconsumed`: never an event a group
        has not read; else such events go too, counted in `unconsumed`."""

    @abc.abstractmethod
    def part_heads_locked(self, topic: str) -> dict[int, int]:
        """Each partition's head, the partitions held for the rest of the transaction
        (PostgreSQL: row locks, taken in partition order): no publish to the topic commits
        in between."""

    @abc.abstractmethod
    def subscription_insert(self, topic: str, name: str, starts: Mapping[int, int]) -> bool:
        """Record a subscription with its start offsets; False when it was recorded already
        (left as it was)."""

    @abc.abstractmethod
    def subscription_list(self, topic: str | None = None) -> list[SubscriptionRecord]:
        """The recorded subscriptions (of a topic), by topic then name."""

    @abc.abstractmethod
    def kind_backlog(self, kinds: Sequence[str]) -> dict[str, int]:
        """Jobs of these kinds not finished yet (scheduled, available, running, retryable),
        by kind (a kind with none is absent): a subscription's backlog."""

    # --- operations composed of the primitives, in one transaction ---------------------
    def group_start(self, topic: str, group: str, part: int, start: int, job: NewJob) -> int | None:
        """Make sure a group's partition has a live job: the position is made at `start` if
        missing, and when no job holds it, or the one that did is finished (dead, cancelled,
        completed without a successor), `job` is inserted and made its holder. Its id, or None
        when a live job holds it already."""
        with cast("Store", self).transaction() as tx:
            pos = tx.group_lock(topic, group, part, start)
            if pos.job_id is not None and pos.job_state is not None:
                if pos.job_state not in FINAL_STATES:
                    return None
            new_id = int(tx.job_insert_many([job])[0].id)
            tx.group_set_job(topic, group, part, new_id)
            return new_id

    def group_handover(
        self, topic: str, group: str, part: int, job_id: int, token: int, job: NewJob
    ) -> int | None:
        """Hand a group's partition from running job `job_id` (lease `token`) to a new job
        `job`, inserted in the same transaction; its id, or None (and nothing inserted) when
        `job_id` no longer holds the partition under that lease."""
        with cast("Store", self).transaction() as tx:
            if not tx.group_fenced(topic, group, part, job_id, token):
                return None
            new_id = int(tx.job_insert_many([job])[0].id)
            tx.group_set_job(topic, group, part, new_id)
            return new_id
