"""arq (asyncio, Redis); results are not kept."""

from __future__ import annotations

from typing import Any

from arq.connections import RedisSettings

from bench import _io
from bench._recorder import record

REDIS = RedisSettings(host="127.0.0.1", port=6379, database=13)


async def noop(ctx: dict[str, Any], i: int, t: float | None = None) -> None:
    record(i, t)


async def io(ctx: dict[str, Any], i: int, t: float | None = None) -> None:
    await _io.job_async(i, t)


class WorkerSettings:
    functions = [noop, io]
    redis_settings = REDIS
    max_jobs = 50
    keep_result = 0
    poll_delay = 0.05
    handle_signals = True
