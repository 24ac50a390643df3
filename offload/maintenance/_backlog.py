"""Recounts the backlog of every bounded queue and job type, for producers' backlog checks.

Producers register the bounds they enforce (`max_backlog`) in the store's small backlog table;
this duty recounts each registered one every round, each count an index range scan that stops
at bound + 1, so a 5M-job backlog costs no more than its bound. Producers read the table at
most once a second instead of counting on every enqueue.
"""

from __future__ import annotations

from offload.app._offload import Offload
from offload.maintenance._duty import Duty


class BacklogCounter(Duty):
    name = "backlog"

    def run(self, app: Offload) -> int:
        return len(app.store.backlog_refresh())
