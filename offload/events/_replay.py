"""Replay: a consumer group reset to an offset or a time, or a subscription given new jobs for
the events from there on (`topic.replay`, `offload events replay`, the API, the dashboard)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from offload._errors import ConfigurationError, InvalidArgumentsError
from offload.events._event import Event

if TYPE_CHECKING:
    from offload.events._topic import Topic

REDELIVER_BATCH = 500  # events per transaction when a subscription gets its jobs again


def start_offsets(
    topic: Topic,
    *,
    from_offset: int | None,
    since: datetime | float | None,
    partitions: Iterable[int] | None = None,
) -> dict[int, int]:
    """The offset each partition starts from: `from_offset` in every one (a partition's head
    at most: an offset not yet taken cannot be skipped), or the first event published at or
    after `since`."""
    if (from_offset is None) == (since is None):
        raise InvalidArgumentsError("replay from an offset or from a time: give exactly one")
    parts = list(range(topic.partitions)) if partitions is None else list(partitions)
    if from_offset is not None:
        if isinstance(from_offset, bool) or not isinstance(from_offset, int) or from_offset < 0:
            raise InvalidArgumentsError(f"from_offset must be an offset >= 0, not {from_offset!r}")
        heads = topic.heads()
        return {p: min(from_offset, heads.get(p, 0)) for p in parts}
    assert since is not None
    return {p: topic.offset_at(p, since) for p in parts}


def replay(
    topic: Topic,
    name: str,
    *,
    from_offset: int | None = None,
    since: datetime | float | None = None,
    partitions: Iterable[int] | None = None,
) -> dict[int, int]:
    """Replay a topic for a consumer group or a subscription named `name`; the offset each
    partition starts from."""
    topic.ensure()
    starts = start_offsets(topic, from_offset=from_offset, since=since, partitions=partitions)
    store = topic.app.store
    subscription = next((s for s in topic.subscriptions if s.name == name), None)
    if subscription is not None:
        redeliver(topic, name, starts)
        return starts
    groups = {p.group for p in store.group_positions(topic.name)}
    if name not in groups:
        known = sorted(groups | {s.name for s in topic.subscriptions})
        raise ConfigurationError(
            f"topic {topic.name!r} has no consumer group or subscription named {name!r} "
            f"(known: {', '.join(known) or 'none'})"
        )
    store.group_set(topic.name, name, starts)
    return starts


def redeliver(topic: Topic, name: str, starts: dict[int, int]) -> int:
    """Make a new job of subscription `name` for every kept event from the starts on; how
    many."""
    from offload.events._topic import subscription_job

    sub = next(s for s in topic.subscriptions if s.name == name)
    app = topic.app
    made = 0
    for part, start in sorted(starts.items()):
        after = start - 1
        while True:
            stored = app.store.event_read(topic.name, part, after, REDELIVER_BATCH)
            if not stored:
                break
            jobs = [subscription_job(sub, Event.of(s)) for s in stored]
            app.admit_and_store(jobs)
            made += len(jobs)
            after = stored[-1].position
    return made
