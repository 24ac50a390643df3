"""Celery with its Redis broker; results are not stored."""

from __future__ import annotations

from celery import Celery

from bench import _io
from bench._config import REDIS_PEERS
from bench._recorder import record

app = Celery("bench", broker=REDIS_PEERS)
app.conf.update(
    task_ignore_result=True,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    worker_prefetch_multiplier=64,
)


@app.task(name="noop")
def noop(i: int, t: float | None = None) -> None:
    record(i, t)


@app.task(name="io")
def io(i: int, t: float | None = None) -> None:
    _io.job(i, t)
