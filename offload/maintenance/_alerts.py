"""Evaluates alert rules (offload/app/_alerts.py) on the leader, every round.

An alert whose condition is breached is pending from the first round that sees it, and fires
once it has been breached for its `for_seconds` (by the store's clock); it resolves at the
first round that sees it back. Firing and resolving are logged, recorded in the store (state
and history) and, for an alert with a webhook, enqueue a delivery job of offload's own
`offload.webhook` kind in the same transaction. An alert left firing by a rule that was
removed resolves. History older than the retention of dead jobs is pruned.
"""

from __future__ import annotations

import logging

from offload.app._alerts import CONDITIONS, AlertRule, Readings, readings_for
from offload.app._offload import Offload
from offload.maintenance._duty import Duty
from offload.store._alerts import FIRING, RESOLVED, AlertState

log = logging.getLogger("offload.alerts")
PRUNE_EVERY = 600.0  # seconds between prunes of the alert history


class AlertEvaluator(Duty):
    name = "alerts"

    def __init__(self, every: float) -> None:
        super().__init__(every)
        self.pending: dict[str, float] = {}  # alert name -> store time it was first breached
        self.pruned_at = float("-inf")  # store time of the last history prune

    def run(self, app: Offload) -> int:
        store = app.store
        rules = app.alerts.rules()
        states = app.alerts.states()
        if not rules and not any(s.firing for s in states.values()):
            return 0
        readings = readings_for(app, rules, app.config.lease_seconds)
        changed = 0
        for rule in rules:
            try:
                changed += self._evaluate(app, rule, readings, states)
            except Exception:
                log.exception("alert %s could not be evaluated", rule.name)
        names = {r.name for r in rules}
        for name, state in states.items():
            if state.firing and name not in names:
                store.alert_record(name, RESOLVED, None, None, f"alert {name}: rule removed")
                log.info("alert %s resolved: its rule was removed", name)
                changed += 1
        if readings.now - self.pruned_at >= PRUNE_EVERY:
            store.alert_history_prune(readings.now - app.config.dead_retention)
            self.pruned_at = readings.now
        return changed

    def _evaluate(
        self, app: Offload, rule: AlertRule, readings: Readings, states: dict[str, AlertState]
    ) -> int:
        condition = CONDITIONS[rule.condition]
        worst = condition.worst(condition.measure(readings, rule.target))
        value = None if worst is None else worst[1]
        breached = worst is not None and condition.breached(worst[1], rule.threshold)
        state = states.get(rule.name)
        firing = bool(state is not None and state.firing)
        if breached:
            assert worst is not None
            since = self.pending.setdefault(rule.name, readings.now)
            if firing or readings.now - since < rule.for_seconds:
                return 0
            subject, seen = worst
            on = f" ({subject})" if subject != "store" else ""
            word = "above" if condition.direction == "above" else "below"
            at_least = (
                "at least " if rule.condition == "queue_depth" and seen >= readings.cap else ""
            )
            message = (
                f"alert {rule.name}: {rule.condition}{on} is {at_least}{seen:g}{condition.unit}, "
                f"{word} {rule.threshold:g}"
            )
            self._record(app, rule, FIRING, seen, message)
            log.warning("%s", message)
            return 1
        self.pending.pop(rule.name, None)
        if not firing:
            return 0
        shown = "no value" if value is None else f"{value:g}{condition.unit}"
        message = f"alert {rule.name} resolved: {rule.condition} is {shown}"
        self._record(app, rule, RESOLVED, value, message)
        log.info("%s", message)
        return 1

    def _record(
        self, app: Offload, rule: AlertRule, state: str, value: float | None, message: str
    ) -> None:
        with app.store.transaction() as tx:
            event = tx.alert_record(rule.name, state, value, rule.threshold, message)
            delivery = app.alerts.delivery(rule, event)
            if delivery is not None:
                tx.job_insert_many([delivery])
