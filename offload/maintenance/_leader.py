"""The maintenance loop: every process runs one, only the elected leader does the duties."""

from __future__ import annotations

import logging
import time

from offload._app import Offload
from offload._loop import BackgroundLoop
from offload.maintenance._backlog import BacklogCounter
from offload.maintenance._duty import Duty
from offload.maintenance._expirer import Expirer
from offload.maintenance._promoter import Promoter
from offload.maintenance._pruner import Pruner
from offload.maintenance._rescuer import Rescuer
from offload.maintenance._scheduler import Scheduler

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
        self.duties: list[Duty] = [
            Promoter(interval),
            Rescuer(interval),
            Scheduler(interval),
            Pruner(60.0),
            Expirer(interval),  # load shedding (issue 5)
            BacklogCounter(interval),
        ]

    def tick(self) -> None:
        was = self.is_leader
        self.is_leader = self.app.store.leader_acquire(LEADERSHIP, self.owner, self.ttl)
        if self.is_leader != was:
            log.info(
                "%s %s maintenance leadership", self.owner, "took" if self.is_leader else "lost"
            )
        if not self.is_leader:
            return
        now = time.monotonic()
        for duty in self.duties:
            if now < duty.next_at:
                continue
            duty.next_at = now + duty.every
            try:
                duty.run(self.app)
            except Exception:
                log.exception("maintenance duty %s failed", duty.name)

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
