"""The maintenance loop: every process runs one, only the elected leader does the duties.

The leader also watches the store's clock against its own monotonic clock. When the store's
clock steps forward (NTP correcting a machine's clock; on SQLite the store's clock is the
machine's), every lease looks that much nearer its end, and live workers' leases would be
taken for expired: the rescuer then waits one lease, in which every live worker renews its
leases on the new clock, so that only the jobs of workers that really stopped are rescued.
"""

from __future__ import annotations

import logging
import time

from offload._loop import BackgroundLoop
from offload.app._offload import Offload
from offload.maintenance._alerts import AlertEvaluator
from offload.maintenance._backlog import BacklogCounter
from offload.maintenance._counts import CountFolder
from offload.maintenance._duty import Duty
from offload.maintenance._events import ConsumerStarter, EventPruner
from offload.maintenance._expirer import Expirer
from offload.maintenance._promoter import Promoter
from offload.maintenance._pruner import Pruner
from offload.maintenance._rescuer import Rescuer
from offload.maintenance._scheduler import Scheduler
from offload.maintenance._workflows import WorkflowSweeper

log = logging.getLogger("offload.maintenance")
LEADERSHIP = "maintenance"


class Maintenance(BackgroundLoop):
    """Elects one leader per store by a lease row and runs the duties on it."""

    name = "maintenance"

    def __init__(self, app: Offload, owner: str) -> None:
        interval = app.config.maintenance_interval
        super().__init__(interval)
        self.app = app
        self.owner = owner
        self.ttl = max(5 * interval, 5.0)
        self.is_leader = False
        # The store's clock and the monotonic clock at the last leader tick, and the
        # monotonic time before which the rescuer waits after a jump of the store's clock.
        self._clock: tuple[float, float] | None = None
        self._rescue_from = 0.0
        config = app.config
        self.jump = max((config.lease_seconds - config.heartbeat_interval) / 2, 0.1)
        self.duties: list[Duty] = [
            Promoter(interval),
            Rescuer(interval),
            Scheduler(interval),
            Pruner(60.0),
            Expirer(interval),  # load shedding (issue 5)
            BacklogCounter(interval),
            CountFolder(interval),  # the kept counts the overview and /metrics read
            AlertEvaluator(max(interval, 5.0)),  # its reads are bounded, yet not every second
            ConsumerStarter(interval),  # events (docs/events.md)
            EventPruner(10.0),
            WorkflowSweeper(interval),  # the safety net of workflows (docs/workflows.md)
        ]

    def tick(self) -> None:
        was = self.is_leader
        self.is_leader = self.app.store.leader_acquire(LEADERSHIP, self.owner, self.ttl)
        if self.is_leader != was:
            log.info(
                "%s %s maintenance leadership", self.owner, "took" if self.is_leader else "lost"
            )
        if not self.is_leader:
            self._clock = None
            return
        now = time.monotonic()
        self._watch_clock(now)
        for duty in self.duties:
            if now < duty.next_at:
                continue
            if isinstance(duty, Rescuer) and now < self._rescue_from:
                continue
            duty.next_at = now + duty.every
            try:
                duty.run(self.app)
            except Exception:
                log.exception("maintenance duty %s failed", duty.name)

    def _watch_clock(self, now: float) -> None:
        """Notice a step of the store's clock since the last tick (see the module's doc)."""
        try:
            store_now = self.app.store.now()
        except Exception:
            log.debug("could not read the store's clock", exc_info=True)
            self._clock = None
            return
        last, self._clock = self._clock, (store_now, now)
        if last is None:
            return
        step = store_now - (last[0] + (now - last[1]))
        lease = self.app.config.lease_seconds
        if step > self.jump:
            self._rescue_from = now + lease
            log.warning(
                "the store's clock jumped %.1fs forward: rescuing expired leases waits %.0fs "
                "for live workers to renew theirs; delayed and retrying jobs come due %.1fs "
                "early",
                step,
                lease,
                step,
            )
        elif step < -self.jump:
            log.warning(
                "the store's clock jumped %.1fs back: delayed and retrying jobs and cron "
                "schedules wait %.1fs longer",
                -step,
                -step,
            )

    def run_all_once(self) -> None:
        """Run every duty now, leader or not (for tests and `drain`)."""
        for duty in self.duties:
            duty.run(self.app)

    def stopped(self) -> None:
        if self.is_leader:
            try:
                self.app.store.leader_release(LEADERSHIP, self.owner)
            except Exception:
                log.debug("could not release leadership", exc_info=True)
            self.is_leader = False
