"""Consumer groups read by workers in other languages, over HTTP (`POST
/topics/{name}/groups/{group}/fetch` and `…/commit`, docs/events.md).

A remote group's partitions are held the way a Python group's are: by partition jobs, one live
job per partition, each on a queue of its own (`offload.events:<topic>:<group>:<partition>`)
that no Python worker serves. A fetch claims the job of a partition that has events the group
has not read (its lease is the fetch's lease), and returns a batch from the group's offset; the
commit moves the offset fenced by that lease and, unless told to keep it, hands the partition
to a new job and completes the claimed one, in one transaction. A client that dies holding a
partition loses its lease like any worker, and the batch is fetched again by another.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from offload._errors import ConfigurationError
from offload._states import FINAL_STATES
from offload.events._event import Event
from offload.store._contract import ClaimParams, Completion, Lease, NewJob

if TYPE_CHECKING:
    from offload.app._offload import Offload
    from offload.events._topic import Topic

REMOTE_MAX_ATTEMPTS = 1000
REMOTE_RESULT_TTL = 60.0


@dataclass(frozen=True, slots=True)
class RemoteBatch:
    """What a fetch gives a remote consumer: the partition it now holds under a lease (the
    job id and lease token to commit with), the offset the batch starts from, and its events."""

    partition: int
    job_id: int
    lease_token: int
    next_offset: int
    events: list[Event]


def remote_kind(topic: str, group: str) -> str:
    return f"offload.consumer:{topic}:{group}"


def remote_queue(topic: str, group: str, partition: int) -> str:
    """The queue of one partition's jobs of a remote group (names past 100 characters are
    shortened with a hash, as a queue's name may be no longer)."""
    name = f"offload.events:{topic}:{group}:{partition}"
    if len(name) <= 100:
        return name
    digest = hashlib.blake2b(name.encode(), digest_size=8).hexdigest()
    return f"offload.events:{digest}:{partition}"


def _job(topic: str, group: str, partition: int) -> NewJob:
    return NewJob(
        kind=remote_kind(topic, group),
        queue=remote_queue(topic, group, partition),
        args={"partition": partition},
        max_attempts=REMOTE_MAX_ATTEMPTS,
        result_ttl=REMOTE_RESULT_TTL,
    )


def _check_remote(app: Offload, topic: Topic, group: str) -> None:
    if (topic.name, group) in app.consumers:
        raise ConfigurationError(
            f"consumer group {group!r} of topic {topic.name!r} is read by this application's "
            "Python workers (@app.consumer); give the HTTP consumers a group of their own"
        )


def fetch(
    app: Offload, topic: Topic, group: str, worker_id: str, limit: int, lease_seconds: float
) -> RemoteBatch | None:
    """Claim a partition of the group that has unread events and read a batch of it; None
    when no partition has events to read (or all that have are held)."""
    _check_remote(app, topic, group)
    topic.ensure()
    store = app.store
    positions = {p.part: p for p in store.group_positions(topic.name, group)}
    for part in range(topic.partitions):
        p = positions.get(part)
        if p is None or p.job_state is None or p.job_state in FINAL_STATES:
            store.group_start(topic.name, group, part, 0, _job(topic.name, group, part))
    if len(positions) < topic.partitions:
        positions = {p.part: p for p in store.group_positions(topic.name, group)}
    queues = [
        remote_queue(topic.name, group, part)
        for part, p in sorted(positions.items())
        if p.lag > 0 and p.job_state == "available"
    ]
    if not queues:
        return None
    claimed = store.job_claim(ClaimParams(queues, 1, worker_id, lease_seconds))
    if not claimed:
        return None
    job = claimed[0]
    part = int(job.args["partition"])
    now = {p.part: p for p in store.group_positions(topic.name, group)}.get(part)
    if now is None or now.job_id != job.id:  # not the holder: a stale job, done with
        store.job_complete_many([Completion(job.id, job.lease_token, None)])
        return None
    stored = store.event_read(topic.name, part, now.next_offset - 1, limit)
    events = [Event.of(s) for s in stored]
    return RemoteBatch(part, job.id, job.lease_token, now.next_offset, events)


def commit(
    app: Offload,
    topic: Topic,
    group: str,
    partition: int,
    job_id: int,
    token: int,
    expect: int,
    next_offset: int,
    *,
    release: bool = True,
    lease_seconds: float = 30.0,
) -> bool:
    """Commit a remote batch: the group's offset moves from `expect` to `next_offset`, fenced
    by the fetch's lease; then the partition is handed on (`release`) or its lease renewed.
    False: nothing was committed (the lease was lost, or a replay moved the offset)."""
    _check_remote(app, topic, group)
    with app.store.transaction() as tx:
        moved = expect == next_offset or tx.group_commit(
            topic.name, group, partition, job_id, token, expect, next_offset
        )
        if not moved or not tx.group_fenced(topic.name, group, partition, job_id, token):
            return False
        if release:
            tx.group_handover(
                topic.name, group, partition, job_id, token, _job(topic.name, group, partition)
            )
            tx.job_complete_many([Completion(job_id, token, {"next_offset": next_offset})])
        else:
            tx.job_heartbeat([Lease(job_id, token)], lease_seconds)
    return True
