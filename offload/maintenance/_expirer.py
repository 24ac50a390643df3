"""Sheds waiting jobs whose expiry has passed (`expires=`), so that no worker claims them.

Found through the partial index on `expires_at`, in bounded batches: at most `batches` of
`limit` jobs per round, so one round never holds the store for long; the rest wait for the
next round. Workers also shed an expired job they happen to claim first.
"""

from __future__ import annotations

import logging

from offload.app._offload import Offload
from offload.maintenance._duty import Duty

log = logging.getLogger("offload.maintenance")


class Expirer(Duty):
    name = "expirer"

    def __init__(self, every: float, limit: int = 1000, batches: int = 10) -> None:
        super().__init__(every)
        self.limit = limit
        self.batches = batches

    def run(self, app: Offload) -> int:
        total = 0
        for _ in range(self.batches):
            n = app.store.job_shed_expired(self.limit)
            total += n
            if n < self.limit:
                break
        if total:
            log.info("shed %d jobs that expired before they could run", total)
        return total
