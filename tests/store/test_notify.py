"""Webhook deliveries: a job whose meta names a URL under "offload.notify" gets a delivery job
when it ends, inserted in the transaction that ends it, whatever ends it."""

from __future__ import annotations

from typing import Any

from offload.store._contract import (
    Completion,
    Failure,
    JobFilter,
    JobRecord,
    Store,
)

from ._helpers import EPS, claim, get, insert, new_job

URL = "https://hooks.example/offload"
NOTIFY = {"offload.notify": URL}


def _deliveries(store: Store) -> list[JobRecord]:
    return list(reversed(store.job_list(JobFilter(kind="offload.webhook", limit=100))))


def _event(record: JobRecord) -> dict[str, Any]:
    assert record.args["url"] == URL
    event: dict[str, Any] = record.args["event"]
    return event


def test_a_completion_inserts_one_delivery_with_the_result(store: Store) -> None:
    [job_id, plain] = insert(store, new_job(meta=NOTIFY, max_attempts=3), new_job())
    jobs = {j.id: j for j in claim(store)}
    store.job_complete_many(
        [Completion(i, j.lease_token, {"total": [1, 2]}) for i, j in jobs.items()]
    )

    [delivery] = _deliveries(store)
    assert (delivery.state, delivery.queue, delivery.max_attempts) == ("available", "default", 10)
    done = get(store, job_id)
    event = _event(delivery)
    assert event["type"] == "job.completed"
    assert (event["id"], event["kind"], event["state"]) == (job_id, "k", "completed")
    assert (event["attempt"], event["max_attempts"]) == (1, 3)
    assert event["result"] == {"total": [1, 2]} and event["error"] is None
    for name in ("finished_at", "inserted_at", "attempted_at"):  # JSON keeps 15 digits
        assert abs(event[name] - getattr(done, name)) < EPS, name
    # Running the delivery itself notifies nobody: its meta names no URL.
    [claimed] = claim(store)
    store.job_complete_many([Completion(claimed.id, claimed.lease_token, None)])
    assert len(_deliveries(store)) == 1
    assert plain not in {_event(d)["id"] for d in _deliveries(store)}


def test_a_retry_is_no_end_and_a_last_failure_is_dead(store: Store) -> None:
    [job_id] = insert(store, new_job(meta=NOTIFY, max_attempts=2))
    [job] = claim(store)
    store.job_fail_many([Failure(job.id, job.lease_token, "first", retry_in=0.0)])
    assert _deliveries(store) == []
    store.job_promote_due()
    [job] = claim(store)
    store.job_fail_many([Failure(job.id, job.lease_token, "second")])

    [delivery] = _deliveries(store)
    event = _event(delivery)
    assert (event["type"], event["id"], event["attempt"]) == ("job.dead", job_id, 2)
    assert event["error"] == "second" and event["result"] is None


def test_a_cancel_in_a_rolled_back_transaction_leaves_no_delivery(store: Store) -> None:
    [job_id] = insert(store, new_job(meta=NOTIFY))
    try:
        with store.transaction() as tx:
            assert tx.job_cancel(job_id)
            assert len(_deliveries(tx)) == 1  # in the transaction, with the cancel
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    assert _deliveries(store) == []
    assert store.job_cancel(job_id)
    [delivery] = _deliveries(store)
    assert _event(delivery)["type"] == "job.cancelled"


def test_a_meta_without_a_text_url_notifies_nobody(store: Store) -> None:
    insert(
        store,
        new_job(meta={"offload.notify": None}),
        new_job(meta={"offload.notify": 5}),
        new_job(meta={"note": "offload.notify"}),
    )
    jobs = claim(store)
    store.job_complete_many([Completion(j.id, j.lease_token, None) for j in jobs])
    assert _deliveries(store) == []
