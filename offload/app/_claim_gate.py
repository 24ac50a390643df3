"""Sheds claimed jobs that must not run: expired ones, and those matching a blackhole rule.

Whoever claims jobs to run them (a worker process, the HTTP worker API for remote workers,
`offload.testing.drain`) passes every claimed batch through `ClaimGate.apply` first; it lives
with the app's rule book so that none of them reaches into another's internals. Rules are
read from the store at most every `RULES_REFRESH` seconds (one small query), so a rule added
or removed anywhere reaches every worker within that time. Jobs to shed are acknowledged as
`shed` in one batched, lease-fenced store operation; if that fails, they stay leased and are
rescued and claimed again later, when they are shed then.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from offload.app._admission import RULES_REFRESH
from offload.dispatch._rules import RuleSet, Subject, shed_reason
from offload.store._contract import ClaimedJob
from offload.store._policy import EXPIRED_REASON, Shed
from offload.telemetry import JobEvent, run_of

if TYPE_CHECKING:
    from offload.app._offload import Offload

log = logging.getLogger("offload.worker")


class ClaimGate:
    """A claimer's copy of the rules, and the shedding of claimed jobs."""

    def __init__(self, app: Offload, refresh: float = RULES_REFRESH) -> None:
        self.app = app
        self.refresh = refresh
        self.rules = RuleSet([])
        self._read_at = -math.inf
        self.shed = 0

    def current(self) -> RuleSet:
        """The rules, read again when the copy is older than `refresh` seconds; on a failed
        read the previous copy is kept (and the read is tried again next time)."""
        now = time.monotonic()
        if now - self._read_at >= self.refresh:
            try:
                rules = RuleSet(self.app.store.rule_list())
            except Exception as exc:
                log.warning("could not read blackhole rules (%s); using the last copy", exc)
                return self.rules
            if [r.id for r in rules.rules] != [r.id for r in self.rules.rules]:
                log.info("blackhole rules now: %s", [r.id for r in rules.rules] or "none")
            for rule, problem in rules.broken:
                log.warning("blackhole rule %d is ignored: %s", rule.id, problem)
            self.rules, self._read_at = rules, now
        return self.rules

    def apply(self, jobs: Sequence[ClaimedJob]) -> list[ClaimedJob]:
        """The jobs to run; the others are shed in the store. Called after every claim,
        even an empty one, so that an idle worker's copy of the rules stays fresh too."""
        rules = self.current()
        if not jobs:
            return []
        sheds: list[Shed] = []
        keep: list[ClaimedJob] = []
        now = time.time()
        for job in jobs:
            if job.expired:
                sheds.append(Shed(job.id, job.lease_token, EXPIRED_REASON))
                continue
            if rules.may_match(job.kind):
                subject = Subject(job.kind, job.queue, job.tenant, job.args, job.meta)
                rule = rules.match(subject, now)
                if rule is not None:
                    sheds.append(Shed(job.id, job.lease_token, shed_reason(rule), rule.id))
                    continue
            keep.append(job)
        if sheds:
            try:
                result = self.app.store.job_shed_many(sheds)
            except Exception as exc:
                log.warning(
                    "could not shed %d jobs (%s); they run again after their lease", len(sheds), exc
                )
            else:
                self.shed += result.applied
                if self.app.hooks.wants("shed"):
                    by_id = {j.id: j for j in jobs}
                    for s in sheds:
                        self.app.hooks.emit(JobEvent("shed", run_of(by_id[s.id]), reason=s.reason))
                named = [f"{s.id}" + (f" by rule {s.rule}" if s.rule else "") for s in sheds]
                more = f" and {len(named) - 10} more" if len(named) > 10 else ""
                log.info(
                    "shed %d claimed jobs (expired or matched a blackhole rule): %s%s",
                    result.applied,
                    ", ".join(named[:10]),
                    more,
                )
        if keep and self.app.hooks.wants("claimed"):
            self.app.hooks.emit(
                JobEvent("claimed", count=len(keep), jobs=[run_of(j) for j in keep])
            )
        return keep
