"""Events: topics as append-only logs in the store, subscriptions that turn events into jobs,
consumer groups that read a topic in order at offsets they commit, and replay
(docs/events.md)."""

from offload.events._consumer import Consumer, SliceEnd
from offload.events._event import Batch, Event
from offload.events._replay import redeliver, replay, start_offsets
from offload.events._topic import (
    Topic,
    check_topic_name,
    find_topic,
    partition_for,
    subscription_job,
)

__all__ = [
    "Batch",
    "Consumer",
    "Event",
    "SliceEnd",
    "Topic",
    "check_topic_name",
    "find_topic",
    "partition_for",
    "redeliver",
    "replay",
    "start_offsets",
    "subscription_job",
]
