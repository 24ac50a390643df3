"""The producer's side of load shedding and blackhole rules: admission and the rule book.

Job options `expires`, `unique`, `critical` and `max_backlog` become a `JobPolicy` on the job
to insert (offload/jobs/_policy.py); `Admission` then checks a batch before it reaches the store:

- backlog bounds: a batch of non-critical jobs that would take a bounded queue or job type past
  its bound raises `OverloadedError` and nothing is stored. Depths come from the store's small
  `backlog` table, which the maintenance leader recounts every `maintenance_interval` (each
  count stops at bound + 1); a producer reads it at most once a second, and recounts itself
  when no leader has refreshed it for a while. So a decision may be a second or two stale and
  a burst can overshoot a bound by what producers enqueue in that window: a bound is a
  shedding threshold, not an exact quota. Refusals are counted in the store's `refused`
  counter (flushed at most once a second and when the app closes).
- blackhole rules: a job that matches a live rule is inserted directly as `shed`, with the
  rule's id in its error entry and in `meta.shed_rule`. Rules are read at most every 0.5 s.

No store call is made for a batch when no bound applies to it, beyond the rules refresh.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from offload._errors import ConfigurationError, InvalidRuleError, OverloadedError
from offload._text import advice, label_problem, shown, text_problem
from offload._time import time_problem
from offload.dispatch._rules import Rule, RuleSet, Subject, parse_where, shed_reason
from offload.dispatch._shedding import Candidate, needed, refusal
from offload.store._contract import NewJob
from offload.store._policy import REFUSED_COUNTER, Backlog, BacklogBound, JobPolicy, NewRule

if TYPE_CHECKING:
    from offload.app._offload import Offload

log = logging.getLogger("offload")

RULES_REFRESH = 0.5  # seconds a producer or a worker may use its copy of the rules
BACKLOG_REFRESH = 1.0  # seconds a producer may use its copy of the backlog depths
REFUSED_FLUSH = 1.0  # seconds between writes of the refused counter


def duration(value: float | timedelta | datetime | None, what: str) -> float | None:
    """Seconds from now: a number, a timedelta, or until an aware datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ConfigurationError(f"{what} must be timezone-aware")
        problem = time_problem(value.timestamp())
        if problem is not None:
            raise ConfigurationError(f"{what} {value.isoformat()} is refused: {problem}")
        return max(value.timestamp() - time.time(), 0.0)
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigurationError(f"{what} must be seconds, a timedelta or a datetime")
    if value <= 0:
        raise ConfigurationError(f"{what} must be positive, got {value!r}")
    if time_problem(time.time() + value) is not None:
        raise ConfigurationError(
            f"{what} of {value!r} s is refused: it would end after 9999-12-31 UTC; give less"
        )
    return float(value)


# --- admission ------------------------------------------------------------------------------
class Admission:
    """Checks batches against backlog bounds and blackhole rules, with cached store reads."""

    def __init__(self, app: Offload, queue_bounds: Mapping[str, int]) -> None:
        self.app = app
        self.queue_bounds = dict(queue_bounds)
        self.rules_refresh = RULES_REFRESH
        self.backlog_refresh = BACKLOG_REFRESH
        self._lock = threading.Lock()
        self._rules = RuleSet([])
        self._rules_read = -math.inf
        self._depths: dict[tuple[str, str], Backlog] = {}
        self._depths_read = -math.inf
        self._changed: dict[tuple[str, str], tuple[float, float]] = {}  # counted_at, seen at
        self._refused = 0
        self._refused_flushed = time.monotonic()

    # --- caches -------------------------------------------------------------------------
    def rules(self) -> RuleSet:
        """The live rules, read again when the copy is older than RULES_REFRESH."""
        now = time.monotonic()
        if now - self._rules_read >= self.rules_refresh:
            rules = self.app.store.rule_list()
            with self._lock:
                self._rules, self._rules_read = RuleSet(rules), now
        return self._rules

    def forget_rules(self) -> None:
        """Read the rules again at the next enqueue (after this process changed them)."""
        self._rules_read = -math.inf

    def _backlog(self, wanted: Sequence[BacklogBound]) -> dict[tuple[str, str], int]:
        """Depths of the wanted bounds, from the cache or the store's backlog table."""
        store = self.app.store
        now = time.monotonic()
        missing = [
            b
            for b in wanted
            if (b.scope, b.name) not in self._depths
            or self._depths[(b.scope, b.name)].bound < b.bound
        ]
        if missing:  # first use of a bound: register it; this counts it at once
            for row in store.backlog_refresh(missing):
                self._depths[(row.scope, row.name)] = row
                self._changed[(row.scope, row.name)] = (row.counted_at, now)
        elif now - self._depths_read >= self.backlog_refresh:
            for row in store.backlog_read():
                self._depths[(row.scope, row.name)] = row
                if self._changed.get((row.scope, row.name), (None,))[0] != row.counted_at:
                    self._changed[(row.scope, row.name)] = (row.counted_at, now)
            self._depths_read = now
            stale_after = max(5 * self.app.config.maintenance_interval, 3.0)
            stale = [
                b
                for b in wanted
                if now - self._changed.get((b.scope, b.name), (0.0, -math.inf))[1] > stale_after
            ]
            if stale:  # no leader is counting (no worker runs): count ourselves
                for row in store.backlog_refresh(stale):
                    self._depths[(row.scope, row.name)] = row
                    self._changed[(row.scope, row.name)] = (row.counted_at, now)
        return {key: row.depth for key, row in self._depths.items()}

    # --- the check --------------------------------------------------------------------
    def admit(self, jobs: Sequence[NewJob], count: bool = True) -> list[NewJob]:
        """The jobs to insert: refused as a batch when over a backlog bound (OverloadedError,
        counted in the store's `refused` counter unless `count` is false), and marked to be
        stored shed when they match a blackhole rule."""
        self.app.webhooks.check(jobs)  # notify URLs: well formed, on the allow-list
        refused = self._refusal(jobs)
        if refused is not None:
            if count:
                self._count_refused(len(jobs))
            raise refused
        # A kind that keeps overrunning its max_run_time orders after the others (_overruns.py).
        return self.app.overruns.penalize(self._apply_rules(jobs))

    def admit_each(self, jobs: Sequence[NewJob]) -> tuple[list[int], OverloadedError | None]:
        """For a producer that can hold jobs back instead of failing (the outbox relay): the
        positions of the jobs that fit their bounds, in order, counting those taken before,
        and the refusal of the others (None when all fit). Admit the fitting ones with
        `admit` after this, for the rules; nothing is counted as refused here."""
        refused = self._refusal(jobs)
        if refused is None:
            return list(range(len(jobs))), None
        depths = {key: row.depth for key, row in self._depths.items()}
        used: dict[tuple[str, str], int] = {}
        taken: list[int] = []
        for i, job in enumerate(jobs):
            wanted = needed([_candidate(job)], self.queue_bounds)
            if all(
                refusal({key: (bound, used.get(key, 0) + 1)}, depths) is None
                for key, (bound, _) in wanted.items()
            ):
                taken.append(i)
                for key in wanted:
                    used[key] = used.get(key, 0) + 1
        return taken, refused

    def _refusal(self, jobs: Sequence[NewJob]) -> OverloadedError | None:
        """Why this batch would pass a backlog bound, or None when it fits (or none applies)."""
        bounded = self.queue_bounds or any(
            j.policy is not None and j.policy.max_backlog is not None for j in jobs
        )
        if not bounded:
            return None
        wanted = needed([_candidate(j) for j in jobs], self.queue_bounds)
        if not wanted:
            return None
        bounds = [BacklogBound(b.scope, b.name, b.limit) for b, _ in wanted.values()]
        refused = refusal(wanted, self._backlog(bounds))
        if refused is None:
            return None
        row = self._depths.get((refused.bound.scope, refused.bound.name))
        age = 0.0 if row is None else max(time.time() - row.counted_at, 0.0)
        retry = max(1.0, 2 * self.app.config.maintenance_interval)
        return OverloadedError(
            refused.message(age),
            retry_after=retry,
            scope=refused.bound.label,
            bound=refused.bound.limit,
        )

    def _apply_rules(self, jobs: Sequence[NewJob]) -> list[NewJob]:
        rules = self.rules()
        if not rules:
            return list(jobs)
        now = time.time()
        out = []
        for j in jobs:
            if not rules.may_match(j.kind):
                out.append(j)
                continue
            rule = rules.match(Subject(j.kind, j.queue, j.tenant, j.args, j.meta), now)
            if rule is not None:
                policy = replace(
                    j.policy or JobPolicy(), shed_rule=rule.id, shed_reason=shed_reason(rule)
                )
                j = replace(j, policy=policy)
            out.append(j)
        return out

    def _count_refused(self, n: int) -> None:
        with self._lock:
            self._refused += n
        if time.monotonic() - self._refused_flushed >= REFUSED_FLUSH:
            self.flush()

    def flush(self) -> None:
        """Write the refusals counted since the last flush to the store's counter."""
        with self._lock:
            n, self._refused = self._refused, 0
            self._refused_flushed = time.monotonic()
        if n:
            try:
                self.app.store.counter_add(REFUSED_COUNTER, n)
            except Exception:
                with self._lock:
                    self._refused += n
                log.debug("could not record %d refused enqueues", n, exc_info=True)


def _candidate(job: NewJob) -> Candidate:
    policy = job.policy
    return Candidate(
        job.queue,
        job.kind,
        None if policy is None else policy.max_backlog,
        policy is not None and policy.critical,
    )


# --- app.rules ------------------------------------------------------------------------------
class RuleBook:
    """Blackhole rules of an application's store, changed at run time: `app.rules`.

        rule = app.rules.add(kind="ImportJob", where="args.customer_id == 123",
                             expires=timedelta(hours=1), reason="customer 123 floods us")
        app.rules.list()
        app.rules.remove(rule.id)

    Jobs that match a live rule are not run: a worker sheds them when it claims them (rules
    reach every worker within a second), and an enqueue stores them directly as `shed`.
    """

    def __init__(self, app: Offload) -> None:
        self.app = app

    def add(
        self,
        kind: str | None = None,
        where: str | None = None,
        *,
        expires: float | timedelta | datetime | None = None,
        reason: str = "",
    ) -> Rule:
        """Add a rule for jobs of `kind` (any kind when None) that meet `where` (all of them
        when None); it stops applying after `expires` (seconds, a timedelta or a datetime)."""
        if kind is not None and (not isinstance(kind, str) or not kind.strip()):
            raise ConfigurationError("a rule's kind must be a job type name, or None for any")
        if kind is None and (where is None or not where.strip()):
            raise ConfigurationError(
                "a rule needs a kind, a where expression, or both; one that matches every job "
                "would stop all work (give where='true == true' if that is really meant)"
            )
        if kind is not None:
            problem = label_problem(kind)
            if problem is not None:
                raise InvalidRuleError(
                    f"a rule's kind {shown(kind)} {problem}; no job type has such a name"
                )
        if not isinstance(reason, str):
            raise ConfigurationError("a rule's reason must be text")
        problem = text_problem(reason)
        if problem is not None:
            raise InvalidRuleError(f"a rule's reason holds {problem}: {advice(problem)}")
        condition = parse_where(where)
        rule = self.app.store.rule_add(
            NewRule(
                kind=kind.strip() if kind else None,
                where=condition.text,
                reason=reason,
                expires_in=duration(expires, "a rule's expires"),
            )
        )
        self.app.admission.forget_rules()
        return rule

    def list(self, include_expired: bool = False) -> list[Rule]:
        """The live rules in id order (and expired ones not yet removed, if asked)."""
        return self.app.store.rule_list(include_expired)

    def remove(self, rule_id: int) -> bool:
        """Remove a rule; False when there is none with that id."""
        removed = self.app.store.rule_remove(int(rule_id))
        self.app.admission.forget_rules()
        return removed
