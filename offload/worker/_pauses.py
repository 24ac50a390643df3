"""What a worker leaves out of its claims while queues or kinds are paused.

The worker reads the paused set (`Store.pause_list`, one small table) at most every
`REFRESH` seconds from its loop, and keeps the last one it read while the store does not answer.
Paused queues are dropped from the claim's queues; paused kinds go to `ClaimParams.skip_kinds`,
which selects the claim's variant that leaves them out. With nothing paused the claim is the
usual one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from offload.store._contract import Store
from offload.store._pauses import Paused

REFRESH = 0.5  # seconds between reads of the paused set: every worker sees a change within ~1 s

log = logging.getLogger("offload.worker")


def claim_scope(queues: Sequence[str], paused: Paused) -> tuple[list[str], tuple[str, ...]]:
    """The queues to claim from and the kinds to skip, given what is paused."""
    if not paused.queues and not paused.kinds:
        return list(queues), ()
    return [q for q in queues if q not in paused.queues], tuple(sorted(paused.kinds))


class PauseWatch:
    """The paused set as a worker last read it, refreshed at most every `REFRESH` seconds."""

    def __init__(self, refresh: float = REFRESH) -> None:
        self.refresh = refresh
        self.paused = Paused()
        self._read_at = -float("inf")

    def update(self, store: Store) -> bool:
        """Read the paused set when due; True when something was resumed since the last read
        (the worker should claim at once)."""
        now = time.monotonic()
        if now - self._read_at < self.refresh:
            return False
        self._read_at = now
        try:
            fresh = Paused.of(store.pause_list())
        except Exception:  # keep the last set: the claim will report the store's trouble
            log.debug("could not read paused queues and kinds", exc_info=True)
            return False
        before, self.paused = self.paused, fresh
        resumed = not (before.queues <= fresh.queues and before.kinds <= fresh.kinds)
        if not (fresh.queues <= before.queues and fresh.kinds <= before.kinds):
            # Something new is paused: jobs this worker claimed since the pause, before it read
            # it, are asked to stop as the pause asked those running then.
            try:
                store.pause_stop_running()
            except Exception:  # the next new pause, or the job's end, settles it
                log.debug("could not ask jobs of paused queues and kinds to stop", exc_info=True)
        if fresh != before:
            log.info(
                "paused queues: %s; paused kinds: %s",
                ", ".join(sorted(fresh.queues)) or "none",
                ", ".join(sorted(fresh.kinds)) or "none",
            )
        return resumed
