"""The leader's events duties: every partition of every declared consumer group held by a live
job (`Consumer.ensure_started`), and topics pruned to their retention (docs/events.md)."""

from __future__ import annotations

import logging

from offload.app._offload import Offload
from offload.maintenance._duty import Duty

log = logging.getLogger("offload.maintenance")
PRUNED = "events_pruned"  # store counters: events removed by retention,
PRUNED_UNCONSUMED = "events_pruned_unconsumed"  # and of those, ones a group had not read


class ConsumerStarter(Duty):
    """Records the app's topics and subscriptions, and gives each partition of each consumer
    group the app declares a job to hold it."""

    name = "consumers"

    def run(self, app: Offload) -> int:
        for topic in list(app.topics.values()):
            topic.ensure()  # records the topic, and its subscriptions where they start
        made = 0
        for consumer in list(app.consumers.values()):
            made += consumer.ensure_started()
        return made


class EventPruner(Duty):
    """Deletes the events of declared topics past their retention, and counts them."""

    name = "event-pruner"

    def run(self, app: Offload) -> int:
        return prune_topics(app)


def prune_topics(app: Offload) -> int:
    """One retention round over the app's topics; how many events it removed."""
    store = app.store
    removed = unconsumed = 0
    for topic in list(app.topics.values()):
        if topic.retention is None and topic.max_events is None:
            continue
        topic.ensure()
        pruned = store.event_prune(topic.spec, store.now(), topic.keep_unconsumed)
        removed += pruned.removed
        unconsumed += pruned.unconsumed
    if removed:
        store.counter_add(PRUNED, removed)
    if unconsumed:
        store.counter_add(PRUNED_UNCONSUMED, unconsumed)
        log.warning("retention pruned %d events that a consumer group had not read", unconsumed)
    return removed
