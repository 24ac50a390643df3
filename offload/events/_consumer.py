"""Consumer groups: `@app.consumer("orders", group="analytics", batch=100)`.

Each partition of a group is held by one job at a time, a *partition job* of the group's own
job type: whichever worker claims it holds the partition, so partitions spread over the workers
there are and move when workers come and go, and a worker that dies loses its lease like any
job's and the partition is rescued, with no rebalancing protocol of its own. A partition job
reads batches from the group's offset, calls the handler with each, and commits the offset
after it, fenced by its lease and the offset it read (`EventOps.group_commit`). After a slice
of time, or once it has waited `idle` seconds for new events, it hands the partition to a new
job in one transaction (`group_handover`), available at once when there may be more or after
`poll` seconds when it was idle, and ends. The leader's maintenance makes sure every partition
of every declared group has a live job (`group_start`), so a job that went dead (its handler
kept failing) is replaced.

Delivery is at-least-once: a batch whose offset was not committed (its worker died, its
handler raised) is delivered again, whole. `batch.commit(connection)` commits the offset in the
handler's own transaction: its effects and the offset then commit together, exactly once.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from offload._errors import ConfigurationError, StoreError
from offload._states import FINAL_STATES
from offload.events._event import Batch, Event
from offload.store._contract import NewJob, joined

if TYPE_CHECKING:
    from offload.app._offload import Offload
    from offload.events._topic import Topic
    from offload.jobs._type import JobType

POLL_SLEEP = 0.05  # seconds between reads of an idle partition within a slice
STARTS = ("earliest", "latest")


@dataclass(frozen=True, slots=True)
class SliceEnd:
    """How one partition job ended: how many events it handled, why it stopped, and the
    job it handed the partition to (None: it no longer held it)."""

    handled: int
    reason: str
    successor: int | None


class Consumer:
    """A consumer group's handler on a topic, and how its partitions are read."""

    def __init__(
        self,
        app: Offload,
        topic: Topic,
        group: str,
        handler: Callable[..., Any],
        *,
        batch: int = 100,
        start: str = "earliest",
        idle: float = 0.5,
        poll: float = 0.5,
        slice_seconds: float = 10.0,
    ) -> None:
        if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= 10_000:
            raise ConfigurationError(f"consumer {group!r}: batch must be 1..10000 events")
        if start not in STARTS:
            raise ConfigurationError(
                f"consumer {group!r}: start must be 'earliest' or 'latest', not {start!r}"
            )
        for what, value in (("idle", idle), ("poll", poll), ("slice_seconds", slice_seconds)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigurationError(f"consumer {group!r}: {what} must be seconds")
        self.app = app
        self.topic = topic
        self.group = group
        self.handler = handler
        self.batch = batch
        self.start = start
        self.idle = float(idle)
        self.poll = float(poll)
        self.slice_seconds = float(slice_seconds)
        self.is_async = inspect.iscoroutinefunction(handler)
        self.job_type: JobType | None = None  # the partition jobs' type, set by the app

    def __repr__(self) -> str:
        return f"<Consumer {self.topic.name}/{self.group} batch={self.batch}>"

    @property
    def kind(self) -> str:
        """The job type name of the group's partition jobs."""
        return f"offload.consumer:{self.topic.name}:{self.group}"

    def partition_job(self, partition: int, delay: float = 0.0) -> NewJob:
        assert self.job_type is not None, "the app sets the partition jobs' type"
        new = self.job_type.prepare_plain({"partition": partition}).new
        return replace(new, delay=delay) if delay else new

    # --- keeping every partition held ------------------------------------------------
    def ensure_started(self) -> int:
        """Give every partition of the group that no live job holds a new partition job
        (made at its start position if the group is new); how many were made."""
        store = self.app.store
        self.topic.ensure()
        held = {p.part: p for p in store.group_positions(self.topic.name, self.group)}
        need = [
            part
            for part in range(self.topic.partitions)
            if part not in held
            or held[part].job_state is None
            or held[part].job_state in FINAL_STATES
        ]
        if not need:
            return 0  # one read while every partition is held
        heads = {p.part: (p.first, p.head) for p in store.partition_list(self.topic.name)}
        made = 0
        for part in need:
            first, head = heads.get(part, (0, 0))
            start = head if self.start == "latest" else first
            if store.group_start(
                self.topic.name, self.group, part, start, self.partition_job(part)
            ):
                made += 1
        return made

    # --- a partition job's run -------------------------------------------------------
    def run_partition(
        self, partition: int, job_id: int, token: int, stopping: Callable[[], bool]
    ) -> SliceEnd:
        """Read and handle one partition while this job (`job_id`, lease `token`) holds it:
        until `stopping()`, the slice is over or the partition stayed idle; then hand it to
        the next job. An exception of the handler propagates (the job retries the batch)."""
        store = self.app.store
        topic, group = self.topic.name, self.group
        position = self._position(partition)
        if position is None or position[1] != job_id:
            return SliceEnd(0, "not the holder", None)
        next_offset = position[0]
        ends = time.monotonic() + self.slice_seconds
        idle_since: float | None = None
        handled = 0
        reason = "idle"
        while True:
            if stopping():
                reason = "stopping"
                break
            if time.monotonic() >= ends:
                reason = "slice"
                break
            stored = store.event_read(topic, partition, next_offset - 1, self.batch)
            if not stored:
                now = time.monotonic()
                idle_since = now if idle_since is None else idle_since
                if now - idle_since >= self.idle:
                    break
                time.sleep(POLL_SLEEP)
                continue
            idle_since = None
            batch = Batch([Event.of(s) for s in stored], self, job_id, token)
            batch.expect = next_offset
            self._call(batch)
            handled += len(batch)
            if batch.committed or not store.group_commit(
                topic, group, partition, job_id, token, next_offset, batch.next_offset
            ):
                # Committed in the handler's transaction (which may have rolled back), or
                # not committed because the partition was lost or replayed: read it again.
                position = self._position(partition)
                if position is None or position[1] != job_id:
                    return SliceEnd(handled, "lost", None)
                if not batch.committed and not store.group_fenced(
                    topic, group, partition, job_id, token
                ):
                    return SliceEnd(handled, "lost", None)
                next_offset = position[0]
            else:
                next_offset = batch.next_offset
        delay = self.poll if reason == "idle" else 0.0
        successor = store.group_handover(
            topic, group, partition, job_id, token, self.partition_job(partition, delay)
        )
        return SliceEnd(handled, reason, successor)

    def _position(self, partition: int) -> tuple[int, int | None] | None:
        for p in self.app.store.group_positions(self.topic.name, self.group):
            if p.part == partition:
                return p.next_offset, p.job_id
        return None

    def _call(self, batch: Batch) -> None:
        if self.is_async:
            asyncio.run(self.handler(batch))
        else:
            self.handler(batch)

    def commit_in(self, batch: Batch, connection: Any) -> None:
        """`Batch.commit`: the fenced offset commit on the caller's transaction."""
        if not batch:
            return
        store = self.app.store
        executor = joined(store, connection) or store.bind(connection)
        ok = executor.group_commit(
            self.topic.name,
            self.group,
            batch.partition,
            batch.job_id,
            batch.token,
            batch.expect,
            batch.next_offset,
        )
        if not ok:
            raise StoreError(
                f"consumer group {self.group!r} of topic {self.topic.name!r} cannot commit "
                f"partition {batch.partition} past offset {batch[-1].offset}: the partition "
                "was lost (its job's lease expired) or replayed meanwhile; the transaction "
                "must roll back, and the batch is delivered again"
            )
