"""Huey with Redis storage; results are not stored."""

from __future__ import annotations

from huey import RedisHuey

from bench import _io
from bench._recorder import record

huey = RedisHuey("bench", host="127.0.0.1", port=6379, db=13, results=False)


@huey.task()
def noop(i: int, t: float | None = None) -> None:
    record(i, t)


@huey.task()
def io(i: int, t: float | None = None) -> None:
    _io.job(i, t)
