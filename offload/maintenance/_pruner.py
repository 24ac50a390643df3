"""Deletes completed jobs past their result expiry and old dead, cancelled and shed jobs;
then rules expired and limit keys idle for as long as dead jobs are kept."""

from __future__ import annotations

from offload.app._offload import Offload
from offload.maintenance._duty import Duty


class Pruner(Duty):
    name = "pruner"

    def run(self, app: Offload) -> int:
        total = 0
        while True:
            n = app.store.job_prune(app.config.dead_retention)
            total += n
            if n < 10000:
                break
        before = app.store.now() - app.config.dead_retention
        app.store.rule_prune(before)
        app.store.limit_prune(before)
        return total
