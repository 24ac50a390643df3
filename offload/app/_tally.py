"""Events a process saw that leave no count in a job's row (failed and retried attempts),
kept in memory and written to the store's totals in one small batch now and then.

Workers flush with their heartbeat, the HTTP server when it records a worker's beat and when
it is scraped, `drain()` and `app.close()` at their end; so acknowledgements write nothing
extra (offload/store/_totals.py).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import TYPE_CHECKING

from offload.store._totals import JobTotal

if TYPE_CHECKING:
    from offload.store._contract import Store

log = logging.getLogger("offload")


class Tally:
    """Counts by (queue, kind, event), safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str, str]] = Counter()

    def failed(self, queue: str, kind: str, retried: bool) -> None:
        """A failed attempt was recorded; `retried` when the job will run again."""
        with self._lock:
            self._counts[(queue, kind, "failed")] += 1
            if retried:
                self._counts[(queue, kind, "retried")] += 1

    def take(self) -> list[JobTotal]:
        """The counts so far, leaving the tally empty."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
        return [JobTotal(q, k, e, n) for (q, k, e), n in sorted(counts.items())]

    def give_back(self, totals: list[JobTotal]) -> None:
        """Counts that could not be written, to be tried again with the next flush."""
        with self._lock:
            for t in totals:
                self._counts[(t.queue, t.kind, t.event)] += t.value

    def flush(self, store: Store) -> None:
        """Write the counts to the store's totals; kept for the next flush if that fails."""
        totals = self.take()
        if not totals:
            return
        try:
            store.job_totals_add(totals)
        except Exception:
            self.give_back(totals)
            raise
