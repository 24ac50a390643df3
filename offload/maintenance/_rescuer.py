"""Rescues jobs whose worker stopped renewing their lease (killed, frozen, cut off)."""

from __future__ import annotations

import logging

from offload.app._offload import Offload
from offload.maintenance._duty import Duty

log = logging.getLogger("offload.maintenance")


class Rescuer(Duty):
    name = "rescuer"

    def run(self, app: Offload) -> int:
        result = app.store.job_rescue_expired(app.config.max_crashes)
        if result.requeued or result.dead:
            log.warning(
                "rescued jobs of lost workers: %d to run again, %d dead (at-most-once or "
                "crashed their worker %d times)",
                result.requeued,
                result.dead,
                app.config.max_crashes,
            )
        return result.requeued + result.dead
