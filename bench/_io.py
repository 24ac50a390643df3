"""The `io` scenario's job body: one round trip to a local service (Redis db 12), then the
run is recorded as every body records it.

`INCR bench:io` is the round trip: a write the server must answer, whose count the harness
checks against the runs. Sync bodies use one `redis.Redis` per process (thread-safe: offload's
and dramatiq's thread pools share it); async bodies one `redis.asyncio.Redis` per process and
event loop, as a user of an asyncio job system would write it.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

from bench._config import REDIS_IO
from bench._recorder import record

KEY = "bench:io"

_sync: tuple[int, Any] | None = None
_async: dict[tuple[int, int], Any] = {}
_lock = threading.Lock()


def _client() -> Any:
    global _sync
    held = _sync
    if held is None or held[0] != os.getpid():  # first call here, or a forked process
        with _lock:
            if _sync is None or _sync[0] != os.getpid():
                import redis

                _sync = (os.getpid(), redis.Redis.from_url(REDIS_IO))
            held = _sync
    return held[1]


def touch() -> None:
    """One round trip: `INCR bench:io`."""
    _client().incr(KEY)


async def touch_async() -> None:
    """The same round trip from a coroutine, on a client of this process's event loop."""
    key = (os.getpid(), id(asyncio.get_running_loop()))
    client = _async.get(key)
    if client is None:
        import redis.asyncio

        client = _async[key] = redis.asyncio.Redis.from_url(REDIS_IO)
    await client.incr(KEY)


def job(i: int, t: float | None = None) -> None:
    """The `io` job body of sync systems: the round trip, then the run recorded."""
    touch()
    record(i, t)


async def job_async(i: int, t: float | None = None) -> None:
    """The `io` job body of async systems."""
    await touch_async()
    record(i, t)


def reset() -> None:
    """Zero the round-trip count (only this key of db 12 is touched)."""
    _client().delete(KEY)


def calls() -> int:
    """Round trips made since the last reset."""
    return int(_client().get(KEY) or 0)
