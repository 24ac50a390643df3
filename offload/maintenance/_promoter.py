"""Makes scheduled and retryable jobs available once their time has come."""

from __future__ import annotations

from offload.app._offload import Offload
from offload.maintenance._duty import Duty


class Promoter(Duty):
    name = "promoter"

    def run(self, app: Offload) -> int:
        total = 0
        while True:
            n = app.store.job_promote_due()
            total += n
            if n < 5000:
                return total
