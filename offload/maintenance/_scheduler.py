"""Fires cron schedules: one job per tick, however many workers run.

The store records each schedule's last fired tick and advances it in the same transaction as
the insert, only forward, so a tick fires once even if two leaders overlapped. After downtime
a schedule fires once for the most recent missed tick, not once per missed tick. A schedule
seen for the first time fires from its next tick on, unless a tick fell within the last
`grace` seconds. A tick's job is made like any enqueue of its type (its options, dispatch
fields and policy) and admitted like one: a tick that a backlog bound refuses is held back and
tried again at every run until it is admitted or the next tick comes (refused once in the
counter, logged once); a blackhole rule stores it `shed`.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from offload._errors import OverloadedError
from offload.app._cron import previous_tick
from offload.app._offload import Offload
from offload.maintenance._duty import Duty
from offload.store._contract import CronTick

log = logging.getLogger("offload.maintenance")


class Scheduler(Duty):
    name = "scheduler"

    def __init__(self, every: float, grace: float = 5.0) -> None:
        super().__init__(every)
        self.grace = grace
        # Ticks a backlog bound refused, by schedule: tried again at every run (counted and
        # logged once) until admitted or the next tick comes.
        self._held: dict[str, float] = {}

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
            held = self._held.get(schedule.name) == tick  # refused by a bound before
            job_type = app.job_type(schedule.job)
            new = replace(
                job_type.prepare_plain(schedule.args).new,
                unique_key=f"cron:{schedule.name}:{tick:.0f}",
                meta={"cron": schedule.name, "tick": tick},
            )
            try:  # backlog bounds and blackhole rules, as for every enqueue
                (new,) = app.admission.admit([new], count=not held)
            except OverloadedError as exc:
                if not held:
                    log.warning("cron %s: tick %s held back: %s", schedule.name, tick, exc)
                self._held[schedule.name] = tick
                continue
            self._held.pop(schedule.name, None)
            if store.cron_fire(CronTick(schedule.name, tick, new)):
                fired += 1
                log.info("cron %s fired for tick %s", schedule.name, tick)
        return fired
