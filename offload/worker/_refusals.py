"""A worker's patience while its store refuses writes (`StoreFullError`: a full disk).

Nothing is wrong with the worker, and nothing it could do would help, so it waits: a growing
pause between attempts, capped so that it resumes within seconds once space is freed, and a log
line at a capped rate (the first refusal, then one a minute) instead of one per attempt.
"""

from __future__ import annotations

import logging
import math
import threading
import time

log = logging.getLogger("offload.worker")


class Refusals:
    """Counts refused writes since the last accepted one and says how long to wait next."""

    def __init__(self, first: float = 0.5, cap: float = 10.0, log_every: float = 60.0) -> None:
        self.first = first
        self.cap = cap
        self.log_every = log_every
        self._lock = threading.Lock()
        self._count = 0  # refusals since the last accepted write
        self._since = 0.0  # monotonic: the first of them
        self._logged = -math.inf  # monotonic: the last line about them
        self._unlogged = 0

    @property
    def refusing(self) -> bool:
        return self._count > 0

    def refused(self, exc: Exception, what: str) -> float:
        """Note a refused write (`what`: the operation); the seconds to wait before trying
        again, doubling from `first` up to `cap`."""
        with self._lock:
            now = time.monotonic()
            if self._count == 0:
                self._since = now
            self._count += 1
            self._unlogged += 1
            pause = min(self.first * 2.0 ** min(self._count - 1, 64), self.cap)
            if now - self._logged >= self.log_every:
                if self._count == 1:
                    log.warning("%s: the store refuses writes: %s", what, exc)
                else:
                    log.warning(
                        "the store still refuses writes (%d refusals in %.0fs, %d since the last "
                        "line; trying every %.1fs): %s",
                        self._count,
                        now - self._since,
                        self._unlogged,
                        pause,
                        exc,
                    )
                self._logged = now
                self._unlogged = 0
            return pause

    def accepted(self) -> None:
        """Note an accepted write: the store takes writes (again)."""
        if self._count == 0:
            return
        with self._lock:
            if self._count:
                log.warning(
                    "the store takes writes again after %d refusals over %.0fs; resuming",
                    self._count,
                    time.monotonic() - self._since,
                )
            self._count = 0
            self._unlogged = 0
            self._logged = -math.inf
