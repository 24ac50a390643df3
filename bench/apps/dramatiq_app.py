"""Dramatiq with its Redis broker."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from bench import _io
from bench._config import REDIS_PEERS
from bench._recorder import record

broker = RedisBroker(url=REDIS_PEERS)
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="default", max_retries=0)
def noop(i: int, t: float | None = None) -> None:
    record(i, t)


@dramatiq.actor(queue_name="default", max_retries=0)
def io(i: int, t: float | None = None) -> None:
    _io.job(i, t)
