"""`job_ack_claim`: a worker's cycle, acknowledgements then the next claim, in one operation."""

from __future__ import annotations

import pytest

from offload.store._contract import AckResult, ClaimParams, Completion, Failure, Store

from ._helpers import claim, counter, get, insert, new_job


def _params(limit: int, queues: tuple[str, ...] = ("default",)) -> ClaimParams:
    return ClaimParams(list(queues), limit, "w2", 600.0)


@pytest.mark.parametrize("durable", [True, False])
def test_acks_then_claims_in_one_call(store: Store, durable: bool) -> None:
    ids = insert(store, *[new_job(priority=10 - i, args={"i": i}) for i in range(6)])
    first = claim(store, limit=3)
    ok, bad, retry = first
    got = store.job_ack_claim(
        [Completion(ok.id, ok.lease_token, {"r": 1})],
        [
            Failure(bad.id, bad.lease_token, "boom"),
            Failure(retry.id, retry.lease_token, "x", "", 30),
        ],
        _params(2),
        durable=durable,
    )
    assert got.completed == AckResult(1, 0)
    assert got.failed == AckResult(2, 0)
    assert [j.id for j in got.claimed] == ids[3:5]  # in claim order, with fresh leases
    assert {j.lease_token for j in got.claimed} != {ok.lease_token}
    assert get(store, ok.id).state == "completed" and get(store, ok.id).result == {"r": 1}
    assert get(store, bad.id).state == "dead"
    assert get(store, retry.id).state == "retryable"
    for j in got.claimed:
        r = get(store, j.id)
        assert (r.state, r.lease_owner, r.lease_token) == ("running", "w2", j.lease_token)


def test_stale_acks_are_fenced_and_counted_and_the_claim_still_runs(store: Store) -> None:
    insert(store, new_job(), new_job())
    [job] = claim(store, limit=1)
    got = store.job_ack_claim(
        [Completion(job.id, job.lease_token + 1)], [Failure(job.id, 12345, "x")], _params(5)
    )
    assert got.completed == AckResult(0, 1) and got.failed == AckResult(0, 1)
    assert len(got.claimed) == 1
    assert get(store, job.id).state == "running"
    assert counter(store, "stale_acks") == 2


def test_without_a_claim_it_only_acknowledges(store: Store) -> None:
    insert(store, new_job(), new_job())
    [job] = claim(store, limit=1)
    got = store.job_ack_claim([Completion(job.id, job.lease_token)], [], None)
    assert got.completed == AckResult(1, 0) and got.claimed == []
    assert get(store, job.id).state == "completed"


def test_nothing_to_acknowledge_is_a_plain_claim(store: Store) -> None:
    insert(store, new_job(queue="a"), new_job(queue="b"))
    got = store.job_ack_claim([], [], _params(10, ("b", "c")))
    assert got.completed == AckResult(0, 0) == got.failed
    assert [j.queue for j in got.claimed] == ["b"]
    assert store.job_ack_claim([], [], _params(10, ("c",))).claimed == []
    assert store.job_ack_claim([], [], _params(0, ("a",))).claimed == []
