"""Dispatch ordering: deadlines (slo) and start-time fair queuing between tenants and types.

Each test counts claims, never time: the order a claim takes jobs in is the behaviour.
"""

from __future__ import annotations

from collections import Counter

from offload.store._contract import JobFilter, Lease, Store

from ._helpers import claim, claim_one, fail, get, insert, new_job, wait_for_clock

HOUR = 3600.0


def _bulk(store: Store, n: int, **fields: object) -> None:
    """Insert `n` jobs in batches of 5000 (the store's bulk insert)."""
    for start in range(0, n, 5000):
        store.job_insert_many([new_job(**fields) for _ in range(min(5000, n - start))])


def test_a_1s_slo_job_is_claimed_before_a_1h_slo_job_enqueued_at_the_same_time(
    store: Store,
) -> None:
    relaxed, urgent = insert(store, new_job("report", slo=HOUR), new_job("alert", slo=1.0))
    assert claim_one(store).id == urgent
    assert claim_one(store).id == relaxed


def test_urgency_holds_across_batches_and_behind_a_backlog(store: Store) -> None:
    _bulk(store, 50, kind="report", slo=HOUR)
    (urgent,) = insert(store, new_job("alert", slo=1.0))
    assert claim_one(store).id == urgent


def test_a_job_without_slo_counts_as_urgent_and_plain_jobs_stay_fifo(store: Store) -> None:
    relaxed, plain1, plain2 = insert(
        store, new_job("report", slo=HOUR), new_job("plain"), new_job("plain")
    )
    assert [j.id for j in claim(store, limit=3)] == [plain1, plain2, relaxed]


def test_deadline_is_scheduled_at_plus_slo(store: Store) -> None:
    at = store.now() - 50
    with_slo, without = insert(
        store, new_job("a", slo=30.0, scheduled_at=at), new_job("b", scheduled_at=at)
    )
    record = get(store, with_slo)
    assert record.deadline is not None
    assert abs(record.deadline - (record.scheduled_at + 30.0)) < 1e-3
    assert get(store, without).deadline is None


def test_a_new_tenant_waits_a_few_claims_behind_a_big_backlog(store: Store) -> None:
    _bulk(store, 20_000, kind="sync", tenant="A")
    for _ in range(5):
        claim(store, limit=10)
    _bulk(store, 1_000, kind="sync", tenant="B")
    tenants = [get(store, claim_one(store).id).tenant for _ in range(20)]
    assert "B" in tenants[:3], tenants
    # then the two interleave: each gets about half of the next claims
    assert 8 <= tenants.count("B") <= 12, tenants


def test_overdue_types_share_claims_by_weight(store: Store) -> None:
    # weight 1 and weight 3: strides 1 and 1/3 (cost / weight)
    _bulk(store, 3000, kind="light", stride=1.0)
    _bulk(store, 3000, kind="heavy", stride=1.0 / 3)
    taken: Counter[str] = Counter()
    for _ in range(200):
        taken.update(j.kind for j in claim(store, limit=10))
    share = taken["heavy"] / (taken["heavy"] + taken["light"])
    assert 0.72 <= share <= 0.78, taken


def test_tenant_weights_divide_the_stride(store: Store) -> None:
    _bulk(store, 2000, kind="sync", tenant="small", stride=1.0)
    _bulk(store, 2000, kind="sync", tenant="big", stride=0.5)
    taken: Counter[str | None] = Counter()
    for _ in range(60):
        taken.update(get(store, j.id).tenant for j in claim(store, limit=10))
    share = taken["big"] / sum(taken.values())
    assert 0.62 <= share <= 0.71, taken


def test_a_high_priority_backlog_does_not_push_new_tenants_back(store: Store) -> None:
    # Each priority of a queue keeps its own virtual clock: claiming a long high-priority
    # backlog does not move the clock that new low-priority tenants start from.
    _bulk(store, 300, kind="urgent", priority=5, tenant="H")
    _bulk(store, 300, kind="sync", tenant="A")
    for _ in range(31):
        claim(store, limit=10)  # all 300 of H, then 10 of A
    _bulk(store, 10, kind="sync", tenant="B")
    tenants = [get(store, claim_one(store).id).tenant for _ in range(4)]
    assert "B" in tenants[:3], tenants


def test_scheduled_jobs_do_not_push_their_flow_back_until_due(store: Store) -> None:
    later = store.now() + HOUR
    store.job_insert_many([new_job("sync", tenant="A", scheduled_at=later) for _ in range(100)])
    (a_now,) = insert(store, new_job("sync", tenant="A"))
    (c_now,) = insert(store, new_job("sync", tenant="C"))
    assert [claim_one(store).id for _ in range(2)] == [a_now, c_now]


def test_jobs_that_become_due_are_tagged_then_and_interleave(store: Store) -> None:
    soon = store.now() + 0.3
    store.job_insert_many([new_job("sync", tenant="A", scheduled_at=soon) for _ in range(20)])
    _bulk(store, 40, kind="sync", tenant="B")
    claim(store, limit=20)  # 20 of B: its lane's clock moves on
    wait_for_clock(store, soon)  # the passing of time is what makes them due
    assert store.job_promote_due() == 20
    tenants = [get(store, claim_one(store).id).tenant for _ in range(10)]
    # tagged at enqueue, A's 20 would all come first; tagged when due, they interleave with B
    assert 4 <= tenants.count("A") <= 6, tenants


def test_a_job_put_back_takes_the_heads_place_when_its_own_is_behind(store: Store) -> None:
    # A job that comes back to available (release, rescue, retry) must not pull its lane's
    # clock back: new tenants would start behind everyone's backlog and jump the queue.
    _bulk(store, 30, kind="sync", tenant="A")
    early = claim_one(store)
    claim(store, limit=10)  # the head moves on to A's 12th job
    head = get(store, claim_one(store).id).order_key + 1
    assert get(store, early.id).order_key < head
    assert store.job_release_many([Lease(early.id, early.lease_token)]) == 1
    assert get(store, early.id).order_key == head
    fail(store, claim_one(store), retry_in=None)  # dead; taken again by an operator later
    claim(store, limit=5)
    (dead,) = store.job_list(JobFilter(states=["dead"]))
    assert store.job_retry(dead.id)
    assert claim_one(store).id == dead.id  # at the head's place (its own was behind): first
    assert get(store, claim_one(store).id).order_key == get(store, dead.id).order_key
