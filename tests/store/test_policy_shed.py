"""`job_shed_many`: a claimed job shed instead of run, fenced by its lease token like an ack."""

from __future__ import annotations

from offload.store._contract import AckResult, JobFilter, Store
from offload.store._policy import Shed

from ._helpers import claim, counter, get, insert, insert_one, new_job, wrong


def test_shedding_a_claimed_job_records_why_and_the_rule(store: Store) -> None:
    job_id = insert_one(store, meta={"trace": "t-1"})
    [job] = claim(store)

    result = store.job_shed_many([Shed(job.id, job.lease_token, "shed by blackhole rule 7", 7)])

    assert result == AckResult(1, 0)
    r = get(store, job_id)
    assert r.state == "shed"
    assert r.attempt == 0  # it never ran: the claimed attempt is not counted
    assert (r.lease_owner, r.lease_expires_at) == (None, None)
    assert r.finished_at is not None
    entry = r.errors[-1]
    assert {k: entry[k] for k in ("attempt", "error", "kind", "rule", "traceback")} == {
        "attempt": 1,
        "error": "shed by blackhole rule 7",
        "kind": "shed",
        "rule": 7,
        "traceback": "",
    }
    assert r.meta == {"trace": "t-1", "shed_rule": 7}
    assert counter(store, "shed") == 1


def test_a_shed_without_a_rule_leaves_meta_alone(store: Store) -> None:
    job_id = insert_one(store)
    [job] = claim(store)
    assert store.job_shed_many([Shed(job.id, job.lease_token, "expired")]).applied == 1
    r = get(store, job_id)
    assert r.meta == {}
    assert r.errors[-1]["rule"] is None


def test_a_stale_token_changes_nothing(store: Store) -> None:
    job_id = insert_one(store)
    [job] = claim(store)

    result = store.job_shed_many([Shed(job.id, wrong(job.lease_token), "no")])

    assert result == AckResult(0, 1)
    assert get(store, job_id).state == "running"
    assert counter(store, "stale_acks") == 1
    assert counter(store, "shed") == 0


def test_a_batch_sheds_many_and_counts_stale_ones_apart(store: Store) -> None:
    ids = insert(store, *[new_job() for _ in range(3)])
    jobs = claim(store)
    sheds = [Shed(j.id, j.lease_token, "x", None) for j in jobs[:2]]
    sheds.append(Shed(jobs[2].id, wrong(jobs[2].lease_token), "x"))

    assert store.job_shed_many(sheds) == AckResult(2, 1)
    assert [get(store, i).state for i in ids] == ["shed", "shed", "running"]
    assert counter(store, "shed") == 2


def test_nothing_to_shed(store: Store) -> None:
    assert store.job_shed_many([]) == AckResult(0, 0)


def test_shed_jobs_are_listed_and_can_be_run_again(store: Store) -> None:
    job_id = insert_one(store)
    [job] = claim(store)
    store.job_shed_many([Shed(job.id, job.lease_token, "x")])

    assert [r.id for r in store.job_list(JobFilter(states=["shed"]))] == [job_id]
    assert store.job_retry(job_id)
    assert get(store, job_id).state == "available"
