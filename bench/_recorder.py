"""Records job runs from inside worker processes, the same way for every system.

A run is one append to an in-memory deque; a thread of the worker process flushes the deque to
Redis every 10 ms in one pipeline: `SETBIT seen i` (its old bit tells a duplicate), the run count,
the first and last run time of the process, and pickup latencies. Recording thus costs the job a
few microseconds and no round trip, and the harness can still tell lost jobs from duplicated ones.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from typing import Any

from bench._config import REDIS_RECORDER

PREFIX = "bench:"
FLUSH_EVERY = 0.01


class _Flusher:
    def __init__(self) -> None:
        import redis

        self.pid = os.getpid()
        self.redis = redis.Redis.from_url(REDIS_RECORDER)
        self.items: collections.deque[tuple[int, float, float | None]] = collections.deque()
        self.first: float | None = None
        thread = threading.Thread(target=self._run, name="bench-recorder", daemon=True)
        thread.start()

    def add(self, i: int, sent: float | None) -> None:
        now = time.time()
        self.items.append((i, now, None if sent is None else now - sent))

    def _run(self) -> None:
        while True:
            time.sleep(FLUSH_EVERY)
            self.flush()

    def flush(self) -> None:
        n = len(self.items)
        if not n:
            return
        batch = [self.items.popleft() for _ in range(n)]
        try:
            self._write(batch)
        except Exception:  # a Redis hiccup: put the runs back, the next flush tries again
            self.items.extendleft(reversed(batch))

    def _write(self, batch: list[tuple[int, float, float | None]]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        counted = [b for b in batch if b[0] >= 0]
        for i, _, _ in counted:
            pipe.setbit(PREFIX + "seen", i, 1)
        pipe.incrby(PREFIX + "runs", len(counted))
        warm = len(batch) - len(counted)
        if warm:
            pipe.incrby(PREFIX + "warm", warm)
        lats = [lat for i, _, lat in batch if lat is not None and i >= 0]
        if lats:
            pipe.rpush(PREFIX + "lat", *lats)
        if self.first is None:
            pipe.hset(PREFIX + "first", str(self.pid), batch[0][1])
        pipe.hset(PREFIX + "last", str(self.pid), batch[-1][1])
        out = pipe.execute()
        if self.first is None:
            self.first = batch[0][1]
        dups = sum(out[: len(counted)])
        if dups:
            self.redis.incrby(PREFIX + "dups", dups)


_flusher: _Flusher | None = None
_lock = threading.Lock()


def record(i: int, sent: float | None = None) -> None:
    """Count one run of job `i` (negative: a warm-up job); `sent` is its enqueue time."""
    global _flusher
    f = _flusher
    if f is None or f.pid != os.getpid():  # first run here, or a forked pool process
        with _lock:
            if _flusher is None or _flusher.pid != os.getpid():
                _flusher = _Flusher()
            f = _flusher
    f.add(i, sent)


class Tally:
    """The harness's side: reset the record, then read what the workers recorded."""

    def __init__(self) -> None:
        import redis

        self.redis = redis.Redis.from_url(REDIS_RECORDER)

    def reset(self) -> None:
        keys = [PREFIX + k for k in ("seen", "runs", "warm", "dups", "lat", "first", "last")]
        self.redis.delete(*keys)

    def runs(self) -> int:
        return int(self.redis.get(PREFIX + "runs") or 0)

    def warm(self) -> int:
        return int(self.redis.get(PREFIX + "warm") or 0)

    def unique(self) -> int:
        return int(self.redis.bitcount(PREFIX + "seen"))

    def dups(self) -> int:
        return int(self.redis.get(PREFIX + "dups") or 0)

    def span(self) -> tuple[float, float]:
        """(first run of any process, last run of any process), epoch seconds."""
        first = [float(v) for v in self.redis.hvals(PREFIX + "first")]
        last = [float(v) for v in self.redis.hvals(PREFIX + "last")]
        return (min(first), max(last)) if first and last else (0.0, 0.0)

    def latencies(self) -> list[float]:
        return [float(v) for v in self.redis.lrange(PREFIX + "lat", 0, -1)]

    def wait(
        self, n: int, timeout: float, stall: float = 15.0, what: str = "runs"
    ) -> dict[str, Any]:
        """Wait until `n` runs were recorded, no progress for `stall` s, or `timeout` s."""
        read = self.runs if what == "runs" else self.warm
        start = time.monotonic()
        last_change, last_value = start, -1
        while True:
            value = read()
            now = time.monotonic()
            if value >= n:
                return {"complete": True, "waited": now - start}
            if value != last_value:
                last_value, last_change = value, now
            if now - last_change > stall or now - start > timeout:
                return {"complete": False, "waited": now - start, "seen": value}
            time.sleep(0.005)
