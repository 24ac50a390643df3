"""Which job types keep running past their max_run_time, as enqueue sees it: their new jobs get
a penalty on their start tag, so that they order after the other jobs of their queue
(dispatch/_ordering.py, docs/scheduling.md).

The kinds come from the store's run-time reports (offload/store/_runtime.py), read at most once
every `refresh_every` seconds per application, so enqueue adds no read per job; in between,
marking a batch is one set look-up per job.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import TYPE_CHECKING

from offload.dispatch._ordering import OVERRUN_PENALTY
from offload.store._runtime import OVERRUN_WINDOW

if TYPE_CHECKING:
    from offload.app._offload import Offload
    from offload.store._contract import NewJob

log = logging.getLogger("offload")
REFRESH_EVERY = 5.0


class Overruns:
    """The kinds flagged as overrunning, refreshed from the store now and then."""

    def __init__(self, app: Offload, refresh_every: float = REFRESH_EVERY) -> None:
        self.app = app
        self.refresh_every = refresh_every
        self._kinds: frozenset[str] = frozenset()
        self._read_at = -float("inf")  # time.monotonic() of the last read
        self._lock = threading.Lock()

    def kinds(self) -> frozenset[str]:
        """The kinds whose new jobs are de-prioritized now."""
        if time.monotonic() - self._read_at >= self.refresh_every:
            with self._lock:
                if time.monotonic() - self._read_at >= self.refresh_every:
                    self._refresh()
        return self._kinds

    def _refresh(self) -> None:
        self._read_at = time.monotonic()
        try:
            store = self.app.store
            now = store.now()
            reports = store.kind_runtimes()
        except Exception as exc:  # never fails an enqueue: the last flags stay
            log.debug("could not read the run-time reports (%s); flags kept", exc)
            return
        self._kinds = frozenset(r.kind for r in reports if r.overrunning(now, OVERRUN_WINDOW))

    def penalize(self, jobs: list[NewJob]) -> list[NewJob]:
        """`jobs`, those of flagged kinds given the overrun penalty on their start tag."""
        flagged = self.kinds()
        if not flagged:
            return jobs
        return [
            dataclasses.replace(j, penalty=OVERRUN_PENALTY) if j.kind in flagged else j
            for j in jobs
        ]

    def forget(self) -> None:
        """Read the reports again at the next enqueue (after a change an app made itself)."""
        self._read_at = -float("inf")
