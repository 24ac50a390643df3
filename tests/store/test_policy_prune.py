"""Housekeeping of policy rows: expired rules and idle limit keys go, live ones stay."""

from __future__ import annotations

from offload.dispatch._limits import LimitSpec
from offload.store._contract import Store
from offload.store._policy import NewRule

from ._helpers import claim, complete, insert, new_job, wait_for_clock

MUTEX = LimitSpec(concurrency=1)


def keys(store: Store) -> list[str]:
    return [info.key for info in store.limit_list()]


def test_rules_expired_before_the_cutoff_are_deleted(store: Store) -> None:
    short = store.rule_add(NewRule("k", "args.x == 1", expires_in=0.05))
    later = store.rule_add(NewRule("k", "args.x == 2", expires_in=3600))
    forever = store.rule_add(NewRule("k", "args.x == 3"))
    wait_for_clock(store, short.expires_at or 0)

    assert store.rule_prune(expired_before=(short.expires_at or 0) - 1) == 0  # expired since
    assert store.rule_prune(expired_before=store.now()) == 1

    assert store.rule_list(include_expired=True) == [later, forever]


def test_an_idle_limit_key_without_unfinished_jobs_is_deleted(store: Store) -> None:
    insert(store, new_job(limit_key="idle", limit=MUTEX))
    for job in claim(store, limit=10):
        complete(store, job)
    insert(store, new_job(limit_key="busy", limit=MUTEX), new_job(limit_key="busy", limit=MUTEX))
    assert keys(store) == ["busy", "idle"]

    assert store.limit_prune(idle_before=store.now() - 3600) == 0  # not idle long enough
    assert store.limit_prune(idle_before=store.now() + 1) == 1  # "busy" has jobs waiting

    assert keys(store) == ["busy"]


def test_a_pruned_key_is_declared_again_by_its_next_job(store: Store) -> None:
    insert(store, new_job(limit_key="k", limit=MUTEX))
    for job in claim(store, limit=10):
        complete(store, job)
    assert store.limit_prune(idle_before=store.now() + 1) == 1

    insert(store, *[new_job(limit_key="k", limit=MUTEX) for _ in range(2)])

    assert keys(store) == ["k"]
    assert len(claim(store, limit=10)) == 1  # the mutex holds again


def test_the_pruner_duty_clears_rules_and_keys_past_the_retention(store_url: str) -> None:
    from offload import Offload
    from offload.maintenance._pruner import Pruner

    app = Offload(store_url, dead_retention=0.0)
    try:
        store = app.store
        rule = store.rule_add(NewRule("k", "args.x == 1", expires_in=0.05))
        insert(store, new_job(limit_key="k", limit=MUTEX))
        for job in claim(store, limit=10):
            complete(store, job)
        wait_for_clock(store, (rule.expires_at or 0) + 0.01)

        Pruner(every=1.0).run(app)

        assert store.rule_list(include_expired=True) == []
        assert keys(store) == []
    finally:
        app.close()
