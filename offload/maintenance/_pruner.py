"""Deletes completed jobs past their result expiry and old dead, cancelled and shed jobs."""

from __future__ import annotations

from offload._app import Offload
from offload.maintenance._duty import Duty


class Pruner(Duty):
    name = "pruner"

    def run(self, app: Offload) -> int:
        total = 0
        while True:
            n = app.store.job_prune(app.config.dead_retention)
            total += n
            if n < 10000:
                return total
