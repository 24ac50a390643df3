"""How a worker waits out a store that fails: short, capped pauses and few log lines.

While the store fails (PostgreSQL down, restarting or out of connections, a full disk), each
loop of the worker tries again after a pause that doubles from 0.1 s up to 1 s, spread a
little so that many workers do not retry in step: back within about a second of the store
answering again, and never a hot loop. It logs the first failure, then a reminder every
`REMIND` seconds, then how long it lasted once the store answers, instead of a line per try.
A stopping worker runs its last store calls `within` a deadline, so that it stops on time.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

_log = logging.getLogger("offload.worker")
FIRST_PAUSE = 0.1
LAST_PAUSE = 1.0
REMIND = 30.0


class Outage:
    """The state of one loop's failing calls to the store (not thread-safe: one per loop)."""

    def __init__(self, log: logging.Logger, what: str) -> None:
        self.log = log
        self.what = what
        self.since: float | None = None  # monotonic time of the first failure in a row
        self.failures = 0
        self._pause = FIRST_PAUSE
        self._reminded = 0.0

    def failed(self, exc: BaseException, doing: str | None = None) -> float:
        """Note a failure; the pause before the next try (seconds)."""
        now = time.monotonic()
        cause = " ".join(str(exc).split()) or type(exc).__name__
        self.failures += 1
        if self.since is None:
            self.since = self._reminded = now
            self.log.warning("%s failed (%s); trying again", doing or self.what, cause)
        elif now - self._reminded >= REMIND:
            self._reminded = now
            self.log.warning(
                "%s still fails after %.0fs and %d tries (%s)",
                self.what,
                now - self.since,
                self.failures,
                cause,
            )
        pause = self._pause * random.uniform(0.8, 1.0)
        self._pause = min(self._pause * 2, LAST_PAUSE)
        return pause

    def succeeded(self) -> None:
        """Note a success: log the end of an outage, and start pauses afresh."""
        if self.since is not None:
            self.log.info(
                "%s works again after %.1fs (%d failed tries)",
                self.what,
                time.monotonic() - self.since,
                self.failures,
            )
        self.since = None
        self.failures = 0
        self._pause = FIRST_PAUSE

    @property
    def failing(self) -> bool:
        return self.since is not None


def within(deadline: float, what: str, fn: Callable[[], object], quiet: bool = False) -> None:
    """Run a store call of a stopping worker, waiting for it until `deadline` at most (on a
    thread of its own, left behind if the store does not answer); failures are logged."""

    def call() -> None:
        try:
            fn()
        except Exception as exc:
            (_log.debug if quiet else _log.warning)("could not %s: %s", what, exc)

    thread = threading.Thread(target=call, name=f"offload-stop-{what}", daemon=True)
    thread.start()
    thread.join(max(deadline - time.monotonic(), 0.0))
    if thread.is_alive():
        _log.warning("could not %s within the grace period (no answer from the store)", what)
