"""Fires cron schedules: one job per tick, however many workers run.

The store records each schedule's last fired tick and advances it in the same transaction as
the insert, only forward, so a tick fires once even if two leaders overlapped. After downtime
a schedule fires once for the most recent missed tick, not once per missed tick. A schedule
seen for the first time fires from its next tick on, unless a tick fell within the last
`grace` seconds.
"""

from __future__ import annotations

import logging

from offload._app import Offload
from offload._cron import previous_tick
from offload.maintenance._duty import Duty
from offload.store._contract import CronTick, NewJob

log = logging.getLogger("offload.maintenance")


class Scheduler(Duty):
    name = "scheduler"

    def __init__(self, every: float, grace: float = 5.0) -> None:
        super().__init__(every)
        self.grace = grace

    def run(self, app: Offload) -> int:
        if not app.schedules:
            return 0
        store = app.store
        now = store.now()
        fired = 0
        for schedule in app.schedules.values():
            tick = previous_tick(schedule.cron, now)
            last = store.cron_last_tick(schedule.name)
            if last is not None and tick <= last:
                continue
            if last is None and now - tick > max(self.grace, 2 * self.every):
                continue
            job_type = app.job_type(schedule.job)
            opts = job_type.options_
            new = NewJob(
                kind=job_type.name,
                queue=opts.queue,
                args=schedule.args,
                priority=opts.priority,
                max_attempts=opts.max_attempts,
                delivery=opts.delivery,
                timeout=opts.timeout,
                result_ttl=opts.result_ttl,
                unique_key=f"cron:{schedule.name}:{tick:.0f}",
                meta={"cron": schedule.name, "tick": tick},
            )
            if store.cron_fire(CronTick(schedule.name, tick, new)):
                fired += 1
                log.info("cron %s fired for tick %s", schedule.name, tick)
        return fired
