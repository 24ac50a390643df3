"""The arithmetic of `offload scale` and the rules of alerts, without a store: the slots a
queue needs for a target lag, each step written out, and alert rules checked where declared."""

from __future__ import annotations

from datetime import timedelta

import pytest

from offload import AlertRule, ConfigurationError
from offload.app._alerts import CONDITIONS, checked_rule
from offload.app._scaling import QueueSignals, recommend


def test_slots_keep_up_with_arrivals_and_drain_the_backlog_within_the_target() -> None:
    s = QueueSignals("mail", depth=600, oldest_age=45.0, arrival_rate=10.0, run_seconds=0.5)
    r = recommend(s, target_lag=30.0, slots_per_worker=4)
    # (10/s + 600 / 30s) × 0.5 s = 15 slots; 15 / 4 per worker → 4 workers.
    assert (r.slots, r.workers) == (15, 4)
    assert r.explanation[1] == "needed rate = 10/s + 600 / 30s = 30 jobs/s"
    assert r.explanation[2] == "slots = 30 jobs/s × 0.5s per job = 15 → 15"
    assert r.explanation[3] == "workers = ceil(15 / 4 slots per worker) = 4"


def test_an_idle_queue_needs_none_and_an_untimed_one_keeps_at_least_one() -> None:
    idle = recommend(QueueSignals("q", 0, 0.0, 0.0, 0.0, 2.0), 30.0)
    assert (idle.slots, idle.workers) == (0, 0)
    untimed = recommend(QueueSignals("q", 5, 3.0), 30.0)
    assert (untimed.slots, untimed.workers) == (1, 1)
    assert "rates not measured" in untimed.explanation[0]
    served = recommend(QueueSignals("q", 5, 3.0, workers=2), 30.0, slots_per_worker=3)
    assert (served.slots, served.workers) == (6, 2)  # the live workers' slots
    with pytest.raises(ValueError):
        recommend(QueueSignals("q", 1, 0.0), 0.0)


def test_alert_rules_are_checked_where_declared() -> None:
    rule = checked_rule("mail-lag", "oldest_job_age", 60, "mail", timedelta(minutes=2))
    assert rule == AlertRule("mail-lag", "oldest_job_age", 60.0, "mail", 120.0)
    assert rule.describe() == "oldest_job_age of mail above 60 for 120s"
    assert checked_rule("w", "workers_alive", 1).describe() == "workers_alive below 1"
    for args, words in [
        (("1x", "queue_depth", 1), "alert name"),
        (("x", "queue_size", 1), "unknown condition 'queue_size'; conditions are"),
        (("x", "queue_depth", "many"), "threshold must be a number"),
        (("x", "queue_depth", float("nan")), "finite"),
        (("x", "dead_per_hour", 1, "mail"), "takes no target"),
        (("x", "queue_depth", 1, None, -1), "0 or more"),
        (("x", "queue_depth", 1, None, 0, "ftp://h/x"), "webhook"),
    ]:
        with pytest.raises(ConfigurationError, match=words):
            checked_rule(*args)


def test_the_worst_value_decides_in_the_condition_s_direction() -> None:
    depth, workers = CONDITIONS["queue_depth"], CONDITIONS["workers_alive"]
    assert depth.worst({"a": 3.0, "b": 9.0}) == ("b", 9.0)
    assert workers.worst({"a": 3.0, "b": 0.0}) == ("b", 0.0)
    assert depth.worst({}) is None
    assert depth.breached(9.0, 5.0) and not depth.breached(5.0, 5.0)
    assert workers.breached(0.0, 1.0) and not workers.breached(1.0, 1.0)
