"""Alerts: rules on what the store says (queue depth, the oldest job's age, SLO attainment,
dead jobs per hour, workers alive, stuck sagas), declared in the app (`app.alert(...)`) or
added at run time (`offload alerts add`, `POST /alerts`), evaluated by the maintenance leader
(offload/maintenance/_alerts.py).

A condition is a named measure with a direction: it reads one value per subject (a queue, a
job type, the store) through `Readings`, which reads the store at most once per measure per
round, and an alert fires when the worst value of its target (any subject when none) stays
beyond its threshold for `for_seconds`. New conditions are added with `register_condition`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from offload._errors import ConfigurationError
from offload.jobs._notify import url_problem
from offload.store._alerts import AlertEvent, AlertState, StoredAlert
from offload.store._contract import NewJob

if TYPE_CHECKING:
    from offload.app._offload import Offload

ABOVE = "above"
BELOW = "below"
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,99}")
DEAD_WINDOW = 3600.0
MIN_DEPTH_CAP = 1000
MAX_DEPTH_CAP = 1_000_000
SLO_WINDOW = 3600.0


class Readings:
    """The store read once per evaluation round, measure by measure, as conditions ask.

    Queues are the ones this app declares, the ones live workers serve and the ones rules
    name; their depth is counted up to `cap` (twice the largest depth threshold, at least
    1,000), so that a round never counts a whole backlog."""

    def __init__(
        self,
        app: Offload,
        seen_within: float,
        targets: Iterable[str] = (),
        cap: int = MIN_DEPTH_CAP,
    ) -> None:
        self.app = app
        self.store = app.store
        self.seen_within = seen_within
        self.targets = set(targets)
        self.cap = cap
        self.now = self.store.now()
        self._cache: dict[str, Any] = {}

    def once(self, key: str, read: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = read()
        return self._cache[key]

    def workers(self) -> list[Any]:
        found: list[Any] = self.once("workers", lambda: self.store.worker_list(self.seen_within))
        return found

    def queues(self) -> list[str]:
        names = {j.options_.queue for j in self.app.jobs.values()} | self.targets
        for w in self.workers():
            names.update(w.queues)
        return sorted(names)

    def depths(self) -> dict[str, int]:
        """Jobs available per queue, each counted up to `cap`."""
        found: dict[str, int] = self.once(
            "depths", lambda: self.store.queue_depth(self.queues(), self.cap)
        )
        return found


Measure = Callable[[Readings, str | None], dict[str, float]]


def readings_for(app: Offload, rules: Sequence[AlertRule], seen_within: float) -> Readings:
    """Readings for one round of `rules`: the queues they name, depths counted far enough to
    compare with every depth threshold."""
    targets = [r.target for r in rules if r.target and CONDITIONS[r.condition].targets == "queue"]
    thresholds = [r.threshold for r in rules if r.condition == "queue_depth"]
    cap = max([MIN_DEPTH_CAP, *(2 * int(min(t, MAX_DEPTH_CAP)) + 1 for t in thresholds)])
    return Readings(app, seen_within, targets, min(cap, MAX_DEPTH_CAP))


@dataclass(frozen=True, slots=True)
class Condition:
    """A named measure: `measure(readings, target)` gives a value per subject; the alert is
    breached when the worst is `direction` (above or below) the threshold. `targets` says what
    a target names ('queue', 'kind', or '' when the condition takes none)."""

    name: str
    direction: str
    measure: Measure
    unit: str
    targets: str
    help: str

    def worst(self, values: dict[str, float]) -> tuple[str, float] | None:
        if not values:
            return None
        pick = max if self.direction == ABOVE else min
        subject = pick(sorted(values), key=lambda k: values[k])
        return subject, values[subject]

    def breached(self, value: float, threshold: float) -> bool:
        return value > threshold if self.direction == ABOVE else value < threshold


CONDITIONS: dict[str, Condition] = {}


def register_condition(condition: Condition) -> Condition:
    """Add a condition that alert rules may name (or replace one of the same name)."""
    CONDITIONS[condition.name] = condition
    return condition


def _only(values: dict[str, float], target: str | None) -> dict[str, float]:
    if target is None:
        return values
    return {target: values[target]} if target in values else {}


def _depth(r: Readings, target: str | None) -> dict[str, float]:
    return _only({q: float(n) for q, n in r.depths().items()}, target)


def _oldest(r: Readings, target: str | None) -> dict[str, float]:
    queues = r.queues()
    heads = r.once("oldest", lambda: r.store.queue_oldest(queues))
    ages = {q: max(r.now - heads[q], 0.0) if q in heads else 0.0 for q in queues}
    return _only(ages, target)


def _slo(r: Readings, target: str | None) -> dict[str, float]:
    rows = r.once("slo", lambda: r.store.job_slo_attainment(r.now - SLO_WINDOW))
    return _only({s.kind: s.on_time / s.started for s in rows if s.started}, target)


def _dead(r: Readings, target: str | None) -> dict[str, float]:
    dead = r.once("dead", lambda: r.store.job_finished_since(r.now - DEAD_WINDOW).get("dead", 0))
    return {"store": float(dead)}


def _stuck(r: Readings, target: str | None) -> dict[str, float]:
    counts = r.once("workflows", r.store.workflow_counts)
    return {"store": float(counts.get("stuck", 0))}


def _workers(r: Readings, target: str | None) -> dict[str, float]:
    alive = r.workers()
    if target is None:
        return {"store": float(len(alive))}
    return {target: float(sum(1 for w in alive if target in w.queues))}


for _c in (
    Condition("queue_depth", ABOVE, _depth, " jobs", "queue", "jobs waiting in a queue"),
    Condition(
        "oldest_job_age", ABOVE, _oldest, "s", "queue", "seconds the oldest waiting job waited"
    ),
    Condition(
        "slo_attainment",
        BELOW,
        _slo,
        "",
        "kind",
        "share of a job type's jobs started by their deadline in the last hour (0 to 1)",
    ),
    Condition("dead_per_hour", ABOVE, _dead, " jobs", "", "jobs that ended dead in the last hour"),
    Condition(
        "workers_alive", BELOW, _workers, "", "queue", "live workers (of a queue, when given)"
    ),
    Condition(
        "stuck_sagas",
        ABOVE,
        _stuck,
        "",
        "",
        "sagas stuck: an undo job ended dead or cancelled (docs/workflows.md)",
    ),
):
    register_condition(_c)


@dataclass(frozen=True, slots=True)
class AlertRule:
    """An alert: `condition` on `target` beyond `threshold` for `for_seconds` fires it;
    `webhook` receives its firing and resolved events; `source` is 'app' (declared in code)
    or 'store' (added at run time)."""

    name: str
    condition: str
    threshold: float
    target: str | None = None
    for_seconds: float = 0.0
    webhook: str | None = None
    source: str = "app"

    @property
    def spec(self) -> Condition:
        return CONDITIONS[self.condition]

    def describe(self) -> str:
        c = CONDITIONS.get(self.condition)
        word = "above" if c is None or c.direction == ABOVE else "below"
        on = f" of {self.target}" if self.target else ""
        lasting = f" for {self.for_seconds:g}s" if self.for_seconds else ""
        return f"{self.condition}{on} {word} {self.threshold:g}{lasting}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "condition": self.condition,
            "target": self.target,
            "threshold": self.threshold,
            "for_seconds": self.for_seconds,
            "webhook": self.webhook,
            "source": self.source,
            "description": self.describe(),
        }


def checked_rule(
    name: Any,
    condition: Any,
    threshold: Any,
    target: Any = None,
    for_seconds: Any = 0.0,
    webhook: Any = None,
    source: str = "app",
) -> AlertRule:
    """An alert rule, or ConfigurationError saying what is wrong with it."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ConfigurationError(
            f"alert name {name!r}: a letter, then up to 99 letters, digits or _ . : - "
            "(e.g. 'mail-backlog')"
        )
    spec = CONDITIONS.get(condition) if isinstance(condition, str) else None
    if spec is None:
        raise ConfigurationError(
            f"alert {name}: unknown condition {condition!r}; conditions are "
            + ", ".join(sorted(CONDITIONS))
        )
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise ConfigurationError(f"alert {name}: threshold must be a number, got {threshold!r}")
    if not math.isfinite(threshold):
        raise ConfigurationError(f"alert {name}: threshold must be finite")
    if target is not None:
        if not spec.targets:
            raise ConfigurationError(
                f"alert {name}: {condition} counts the whole store and takes no target"
            )
        if not isinstance(target, str) or not target:
            raise ConfigurationError(f"alert {name}: target must name a {spec.targets}")
    if isinstance(for_seconds, timedelta):
        for_seconds = for_seconds.total_seconds()
    if isinstance(for_seconds, bool) or not isinstance(for_seconds, int | float):
        raise ConfigurationError(f"alert {name}: for_seconds must be a number of seconds")
    if not (math.isfinite(for_seconds) and for_seconds >= 0):
        raise ConfigurationError(f"alert {name}: for_seconds must be 0 or more")
    if webhook is not None:
        problem = url_problem(webhook)
        if problem is not None:
            raise ConfigurationError(f"alert {name}: webhook {problem}")
    return AlertRule(name, condition, float(threshold), target, float(for_seconds), webhook, source)


def from_stored(s: StoredAlert) -> AlertRule:
    return AlertRule(s.name, s.condition, s.threshold, s.target, s.for_seconds, s.webhook, "store")


def event_document(rule: AlertRule, event: AlertEvent) -> dict[str, Any]:
    """What an alert's webhook receives: `{"type": "alert.firing" | "alert.resolved",
    "timestamp", "data"}`, the shape of job events (docs/webhooks.md)."""
    from offload.app._webhooks import iso

    return {
        "type": f"alert.{event.state}",
        "timestamp": iso(event.at),
        "data": {
            "id": event.id,
            "alert": rule.name,
            "state": event.state,
            "condition": rule.condition,
            "target": rule.target,
            "threshold": rule.threshold,
            "value": event.value,
            "message": event.message,
        },
    }


class Alerts:
    """An app's alerts: the rules it declares, those added at run time in its store, their
    states and history. `queue` is where webhook deliveries of alert events run."""

    def __init__(self, app: Offload) -> None:
        self.app = app
        self.declared: dict[str, AlertRule] = {}
        self.queue = "default"

    def declare(self, rule: AlertRule) -> AlertRule:
        if rule.webhook is not None:
            self.app.webhooks.check([_probe(rule.webhook)])
        self.declared[rule.name] = rule
        return rule

    def add(
        self,
        name: str,
        condition: str,
        threshold: float,
        *,
        target: str | None = None,
        for_seconds: float | timedelta = 0.0,
        webhook: str | None = None,
    ) -> AlertRule:
        """Add (or replace) an alert rule in the store, evaluated from the next round on."""
        rule = checked_rule(name, condition, threshold, target, for_seconds, webhook, "store")
        if rule.name in self.declared:
            raise ConfigurationError(
                f"alert {rule.name} is declared in the app; give the run-time one another name"
            )
        if rule.webhook is not None:
            self.app.webhooks.check([_probe(rule.webhook)])
        stored = self.app.store.alert_add(
            StoredAlert(
                rule.name,
                rule.condition,
                rule.threshold,
                rule.target,
                rule.for_seconds,
                rule.webhook,
            )
        )
        return from_stored(stored)

    def remove(self, name: str) -> bool:
        """Remove a run-time rule; False when the store has none of that name."""
        return self.app.store.alert_remove(name)

    def rules(self) -> list[AlertRule]:
        """Declared rules, then the store's (one declared in the app wins a shared name)."""
        found = dict(self.declared)
        for s in self.app.store.alert_list():
            if s.name not in found and s.condition in CONDITIONS:
                found[s.name] = from_stored(s)
        return sorted(found.values(), key=lambda r: r.name)

    def states(self) -> dict[str, AlertState]:
        return {s.name: s for s in self.app.store.alert_states()}

    def history(self, limit: int = 50, name: str | None = None) -> list[AlertEvent]:
        return self.app.store.alert_history(limit, name)

    def delivery(self, rule: AlertRule, event: AlertEvent) -> NewJob | None:
        """The webhook delivery job (offload's `offload.webhook` kind) of an alert event."""
        if rule.webhook is None:
            return None
        from offload.app._webhooks import KIND, MAX_ATTEMPTS

        document = event_document(rule, event)
        return NewJob(
            kind=KIND,
            queue=self.queue,
            args={"url": rule.webhook, "event": {"type": document["type"], "document": document}},
            max_attempts=MAX_ATTEMPTS,
            timeout=None,
        )


def _probe(url: str) -> NewJob:
    from offload.jobs._notify import NOTIFY_META

    return NewJob(kind="alert", queue="default", args={}, meta={NOTIFY_META: url})
