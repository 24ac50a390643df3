"""The events part of `/metrics` (docs/events.md), read from the store at scrape time: events
published and kept per partition, each consumer group's offset and lag per partition, and each
subscription's backlog (its jobs not finished yet). Events removed by retention are the store
counters `events_pruned` and `events_pruned_unconsumed` (`offload_store_events`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from offload.app._offload import Offload


def events_metrics(app: Offload) -> Iterator[Metric]:
    store = app.store
    published = CounterMetricFamily(
        "offload_events_published",
        "Events ever published to a partition (its head offset).",
        labels=["topic", "partition"],
    )
    kept = GaugeMetricFamily(
        "offload_events_kept", "Events a partition keeps now.", labels=["topic", "partition"]
    )
    for p in store.partition_list():
        published.add_metric([p.topic, str(p.part)], p.head)
        kept.add_metric([p.topic, str(p.part)], p.count)
    yield published
    yield kept
    lag = GaugeMetricFamily(
        "offload_consumer_lag",
        "Events published to a partition that a consumer group has not read yet.",
        labels=["topic", "group", "partition"],
    )
    offset = GaugeMetricFamily(
        "offload_consumer_offset",
        "The next offset a consumer group reads in a partition.",
        labels=["topic", "group", "partition"],
    )
    for g in store.group_positions():
        key = [g.topic, g.group, str(g.part)]
        lag.add_metric(key, g.lag)
        offset.add_metric(key, g.next_offset)
    yield lag
    yield offset
    backlog = GaugeMetricFamily(
        "offload_subscription_backlog",
        "Jobs of a subscription not finished yet (scheduled, available, running, retryable).",
        labels=["topic", "subscription"],
    )
    subscriptions = {s.name: t.name for t in app.topics.values() for s in t.subscriptions}
    counts = store.kind_backlog(sorted(subscriptions))
    for name, topic in sorted(subscriptions.items()):
        backlog.add_metric([topic, name], counts.get(name, 0))
    yield backlog
