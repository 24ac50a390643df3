"""Advances workflows whose step jobs ended by a path that does not advance them itself (bulk
operations, a claim that made a job dead, a rescue on PostgreSQL): the safety net under the
advance that job transitions make in their own transaction (offload/store/_workflows.py)."""

from __future__ import annotations

from offload.app._offload import Offload
from offload.maintenance._duty import Duty


class WorkflowSweeper(Duty):
    name = "workflows"

    def run(self, app: Offload) -> int:
        total = 0
        for _ in range(10):  # 1,000 workflows a round at most: the leader has other duties
            n = app.store.workflow_sweep(100)
            total += n
            if n < 100:
                break
        return total
