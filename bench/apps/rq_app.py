"""RQ: the job function (workers are `rq worker -w rq.worker.SimpleWorker`)."""

from __future__ import annotations

from bench import _io
from bench._recorder import record


def noop(i: int, t: float | None = None) -> None:
    record(i, t)


def io(i: int, t: float | None = None) -> None:
    _io.job(i, t)
