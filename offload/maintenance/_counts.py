"""Folds the deltas of the kept job counts into the counts (offload/store/_totals.py), so that
the overview, `/metrics` and `offload stats` read a few rows however many jobs went by."""

from __future__ import annotations

from offload.app._offload import Offload
from offload.maintenance._duty import Duty


class CountFolder(Duty):
    name = "counts"

    def run(self, app: Offload) -> int:
        return app.store.counts_fold()
