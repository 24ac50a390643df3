"""Blackhole rules in the store: add, list (live ones by the store's clock), remove, and jobs
that matched a rule at enqueue stored directly as `shed`."""

from __future__ import annotations

from offload.store._contract import JobFilter, Store
from offload.store._policy import JobPolicy, NewRule

from ._helpers import between, claim, counter, get, insert, new_job, wait_for_clock


def test_rules_are_added_listed_and_removed(store: Store) -> None:
    before = store.now()
    first = store.rule_add(NewRule("ImportJob", "args.customer_id == 123", "floods us"))
    second = store.rule_add(NewRule(None, 'tenant == "acme"', "", expires_in=3600))
    after = store.now()

    assert second.id > first.id
    assert (first.kind, first.where, first.reason, first.expires_at) == (
        "ImportJob",
        "args.customer_id == 123",
        "floods us",
        None,
    )
    assert between(before, first.created_at, after)
    assert second.kind is None
    assert between(before + 3600, second.expires_at, after + 3600)
    assert store.rule_list() == [first, second]

    assert store.rule_remove(first.id) is True
    assert store.rule_remove(first.id) is False
    assert store.rule_list() == [second]


def test_an_expired_rule_is_listed_only_when_asked(store: Store) -> None:
    short = store.rule_add(NewRule("k", "args.x == 1", expires_in=0.05))
    kept = store.rule_add(NewRule("k", "args.x == 2"))
    wait_for_clock(store, short.expires_at or 0)

    assert store.rule_list() == [kept]
    assert store.rule_list(include_expired=True) == [short, kept]


def test_a_job_shed_at_enqueue_is_stored_shed_with_its_rule(store: Store) -> None:
    shed_policy = JobPolicy(shed_rule=3, shed_reason="shed by blackhole rule 3: floods us")
    shed, kept = insert(store, new_job(policy=shed_policy, meta={"m": 1}), new_job())

    r = get(store, shed)
    assert r.state == "shed"
    assert r.finished_at is not None
    assert r.meta == {"m": 1, "shed_rule": 3}
    entry = r.errors[-1]
    assert (entry["kind"], entry["rule"], entry["error"]) == (
        "shed",
        3,
        "shed by blackhole rule 3: floods us",
    )
    assert counter(store, "shed") == 1
    assert [j.id for j in claim(store)] == [kept]
    assert [j.id for j in store.job_list(JobFilter(states=["shed"]))] == [shed]


def test_queued_jobs_are_paged_for_a_rules_preview(store: Store) -> None:
    """What a new rule would shed: jobs waiting to run, of a kind or of any, in id order."""
    a, b, c, _running = insert(
        store,
        new_job("ImportJob", args={"customer_id": 1}, meta={"m": 1}, tenant="acme"),
        new_job("Other", queue="q2", args={"x": 2}),
        new_job("ImportJob", args={"customer_id": 2}, scheduled_at=store.now() + 3600),
        new_job("ImportJob", queue="busy"),
    )
    assert len(claim(store, ["busy"])) == 1  # running: too late for a rule
    first = store.job_queued_page(None, 0, 2)
    assert [j.id for j in first] == [a, b]
    assert (first[0].kind, first[0].queue, first[0].tenant) == ("ImportJob", "default", "acme")
    assert (first[0].args, first[0].meta) == ({"customer_id": 1}, {"m": 1})
    assert first[1].tenant is None and first[1].args == {"x": 2}
    assert [j.id for j in store.job_queued_page(None, b, 10)] == [c]  # scheduled counts
    assert [j.id for j in store.job_queued_page("ImportJob", 0, 10)] == [a, c]
    assert store.job_queued_page("Nothing", 0, 10) == []
