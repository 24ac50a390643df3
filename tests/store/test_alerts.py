"""Lag signals and alerts in the store: the oldest waiting job of each queue (read from the
head of its claim order), alert rules added, replaced and removed, and the state and history
an alert's firing and resolution leave."""

from __future__ import annotations

from offload.store._alerts import FIRING, RESOLVED, StoredAlert
from offload.store._contract import Store

from ._helpers import EPS, claim, insert, new_job


def test_the_oldest_available_job_of_each_queue(store: Store) -> None:
    now = store.now()
    insert(
        store,
        new_job(queue="mail", scheduled_at=now - 50),
        new_job(queue="mail", scheduled_at=now - 20),
        new_job(queue="reports", scheduled_at=now - 5),
        new_job(queue="later", delay=3600),
    )
    claim(store, ["reports"])  # running: no longer waiting

    oldest = store.queue_oldest(["mail", "reports", "later", "none"])

    assert set(oldest) == {"mail"}
    assert abs(oldest["mail"] - (now - 50)) < EPS
    assert store.queue_oldest([]) == {}


def test_queue_depths_are_counted_up_to_a_cap(store: Store) -> None:
    insert(store, *(new_job(queue="mail") for _ in range(5)), new_job(queue="reports"))
    insert(store, new_job(queue="later", delay=3600))

    assert store.queue_depth(["mail", "reports", "later", "none"], cap=3) == {
        "mail": 3,
        "reports": 1,
        "later": 0,
        "none": 0,
    }
    assert store.queue_depth(["mail"], cap=100) == {"mail": 5}
    assert store.queue_depth([], cap=10) == {}


def test_alert_rules_are_added_replaced_listed_and_removed(store: Store) -> None:
    before = store.now()
    deep = store.alert_add(StoredAlert("deep", "queue_depth", 1000, target="mail"))
    store.alert_add(StoredAlert("few", "workers_alive", 1, for_seconds=60, webhook="https://x/y"))
    assert deep.created_at >= before - EPS
    assert (deep.name, deep.condition, deep.threshold, deep.target) == (
        "deep",
        "queue_depth",
        1000,
        "mail",
    )

    again = store.alert_add(StoredAlert("deep", "queue_depth", 50))
    listed = store.alert_list()
    assert [a.name for a in listed] == ["deep", "few"]
    assert listed[0] == again and again.threshold == 50 and again.target is None
    assert (listed[1].for_seconds, listed[1].webhook) == (60, "https://x/y")

    assert store.alert_remove("deep") is True
    assert store.alert_remove("deep") is False
    assert [a.name for a in store.alert_list()] == ["few"]


def test_firing_and_resolving_leave_state_and_history(store: Store) -> None:
    assert store.alert_states() == []
    fired = store.alert_record("deep", FIRING, 1500.0, 1000.0, "queue mail holds 1500 jobs")
    (state,) = store.alert_states()
    assert (state.name, state.firing, state.value) == ("deep", True, 1500.0)
    assert state.since is not None and abs(state.since - fired.at) < EPS

    resolved = store.alert_record("deep", RESOLVED, 10.0, 1000.0, "back to 10")
    (state,) = store.alert_states()
    assert (state.firing, state.since, state.value) == (False, None, 10.0)

    history = store.alert_history()
    assert [(e.name, e.state, e.message) for e in history] == [
        ("deep", RESOLVED, "back to 10"),
        ("deep", FIRING, "queue mail holds 1500 jobs"),
    ]
    assert history[0] == resolved and history[1] == fired
    store.alert_record("other", FIRING, None, None, "x")
    assert [e.name for e in store.alert_history(name="deep")] == ["deep", "deep"]
    assert len(store.alert_history(limit=1)) == 1

    assert store.alert_history_prune(resolved.at + 1) == 3
    assert store.alert_history() == []


def test_removing_a_rule_forgets_its_state(store: Store) -> None:
    store.alert_add(StoredAlert("deep", "queue_depth", 1))
    store.alert_record("deep", FIRING, 2.0, 1.0, "deep")
    store.alert_remove("deep")
    assert store.alert_states() == []
