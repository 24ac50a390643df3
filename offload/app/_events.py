"""Declaring topics, subscriptions and consumer groups on an application (`app.topic`,
`@app.subscribe`, `@app.consumer`): the events package's parts bound to the app's registry of
job types and to the running job's context (docs/events.md)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from offload._errors import ConfigurationError
from offload.app._context import CURRENT, current_job
from offload.events import Consumer, Event, Topic, check_topic_name
from offload.jobs._type import JobOptions, JobType, build_options, check_kind_name

if TYPE_CHECKING:
    from offload.app._offload import Offload

CONSUMER_RESULT_TTL = 60.0  # seconds a finished partition job is kept (one per slice)
CONSUMER_MAX_ATTEMPTS = 25  # a failing batch retries this often before a new job takes over


def declare_topic(
    app: Offload,
    name: str,
    partitions: int,
    retention: float | timedelta | None,
    max_events: int | None,
    keep_unconsumed: bool,
) -> Topic:
    check_topic_name(name)
    if name in app.topics:
        raise ConfigurationError(f"a topic named {name!r} is declared twice")
    topic = Topic(app, name, partitions, retention, max_events, keep_unconsumed)
    topic.context_meta = _context_meta
    app.topics[name] = topic
    return topic


def _context_meta() -> dict[str, Any]:
    """What an event published from a running job carries: that job's id, and its
    correlation id when it has one (so a chain of events and jobs shares one)."""
    cell = CURRENT.get()
    if cell is None:
        return {}
    job = cell[1]
    meta: dict[str, Any] = {"job_id": job.id}
    parent = job.meta.get("correlation_id") if job.meta else None
    if parent is not None:
        meta["correlation_id"] = parent
    return meta


def topic_of(app: Offload, topic: str | Topic) -> Topic:
    name = topic.name if isinstance(topic, Topic) else topic
    found = app.topics.get(name) if isinstance(name, str) else None
    if found is None:
        raise ConfigurationError(
            f"no topic named {name!r} in this application: declare it first, "
            f"{name!s} = app.topic({name!r}, partitions=...)"
        )
    return found


def declare_subscription(
    app: Offload, topic: str | Topic, name: str, fn: Callable[..., Any], options: dict[str, Any]
) -> JobType:
    """A job type that runs `fn(event)` once per event published to the topic."""
    t = topic_of(app, topic)
    check_kind_name(name, "a subscription's name")
    start = options.pop("start", None)
    if not (
        start is None
        or start == "end"
        or isinstance(start, datetime)
        or (isinstance(start, int) and not isinstance(start, bool) and start >= 0)
    ):
        raise ConfigurationError(
            f"subscription {name!r}: start is 'end', an offset or a datetime, not {start!r}"
        )
    if name in app.jobs:
        raise ConfigurationError(f"a job named {name!r} is declared twice")
    params = list(inspect.signature(fn).parameters)
    if len(params) < 1:
        raise ConfigurationError(
            f"subscription {name!r}: its function takes the event, e.g. "
            "def handle(event: offload.Event) -> None"
        )
    if inspect.iscoroutinefunction(fn):

        async def run_async(event: dict[str, Any]) -> Any:
            return await fn(Event.from_json(event))

        target: Callable[..., Any] = run_async
    else:

        def run(event: dict[str, Any]) -> Any:
            return fn(Event.from_json(event))

        target = run
    functools.update_wrapper(target, fn, assigned=("__module__", "__doc__"), updated=())
    opts = build_options(JobOptions(), name, options)
    job_type = JobType(app, target, name, opts)
    app.jobs[name] = job_type
    t.subscriptions.append(job_type)
    t.subscription_starts[name] = start
    return job_type


def declare_consumer(
    app: Offload,
    topic: str | Topic,
    group: str,
    fn: Callable[..., Any],
    batch: int,
    options: dict[str, Any],
) -> Consumer:
    """A consumer group on the topic, and the job type of its partition jobs."""
    t = topic_of(app, topic)
    check_kind_name(group, "a consumer group's name")
    if (t.name, group) in app.consumers:
        raise ConfigurationError(f"consumer group {group!r} of topic {t.name!r} is declared twice")
    own = {k: options.pop(k) for k in ("start", "idle", "poll", "slice_seconds") if k in options}
    consumer = Consumer(app, t, group, fn, batch=batch, **own)

    def run_partition(partition: int) -> dict[str, Any]:
        ctx = current_job()
        end = consumer.run_partition(partition, ctx.id, ctx.lease_token, lambda: ctx.stop_requested)
        return {"handled": end.handled, "ended": end.reason, "next_job": end.successor}

    run_partition.__doc__ = f"reads partitions of {t.name!r} for group {group!r}"
    defaults = {"max_attempts": CONSUMER_MAX_ATTEMPTS, "result_ttl": CONSUMER_RESULT_TTL}
    opts = build_options(JobOptions(), consumer.kind, {**defaults, **options})
    if consumer.kind in app.jobs:
        raise ConfigurationError(f"a job named {consumer.kind!r} is declared twice")
    job_type = JobType(app, run_partition, consumer.kind, opts)
    consumer.job_type = job_type
    app.jobs[consumer.kind] = job_type
    app.consumers[(t.name, group)] = consumer
    return consumer
