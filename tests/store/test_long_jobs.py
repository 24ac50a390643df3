"""Long-job operations (docs/long-jobs.md): an iteration job's state, checkpoints, putting a
stopped job back, ending one cancelled, and stop requests, each fenced by the lease token."""

from __future__ import annotations

from offload.store._contract import AckResult, Checkpoint, IterationState, PutBack, Store

from ._helpers import claim_one, get, insert_one, lease, wrong


def test_a_fresh_job_starts_from_no_cursor(store: Store) -> None:
    insert_one(store)
    job = claim_one(store)
    assert store.job_iteration_state(lease(job)) == IterationState(None, None, None, None)
    assert store.job_iteration_state(lease(job).__class__(job.id, wrong(job.lease_token))) is None


def test_checkpoint_stores_cursor_and_progress_and_reads_the_stop_request(store: Store) -> None:
    insert_one(store)
    job = claim_one(store)
    cursor = {"after": [3, "é"], "n": 1.5}
    got = store.job_checkpoint_many([Checkpoint(job.id, job.lease_token, cursor, 7, 10, 3.0)])
    assert got == {job.id: None}
    r = get(store, job.id)
    assert (r.cursor, r.progress_done, r.progress_total) == (cursor, 7, 10)
    assert r.progress_eta is not None and r.progress_eta > store.now() - 1
    assert store.job_iteration_state(lease(job)) == IterationState(cursor, 7, 10, None)

    # progress alone keeps the cursor; a total of None keeps the stored one
    store.job_checkpoint_many([Checkpoint(job.id, job.lease_token, None, 8, has_cursor=False)])
    r = get(store, job.id)
    assert (r.cursor, r.progress_done, r.progress_total) == (cursor, 8, 10)

    assert store.job_request_stop(job.id, "pause")
    got = store.job_checkpoint_many([Checkpoint(job.id, job.lease_token, 5, 9)])
    assert got == {job.id: "pause"}
    assert store.job_stop_requests([lease(job)]) == {job.id: "pause"}


def test_a_stale_checkpoint_changes_nothing(store: Store) -> None:
    insert_one(store)
    job = claim_one(store)
    got = store.job_checkpoint_many([Checkpoint(job.id, wrong(job.lease_token), 1, 1)])
    assert got == {}
    assert get(store, job.id).cursor is None


def test_put_back_gives_the_attempt_back_and_keeps_the_cursor(store: Store) -> None:
    insert_one(store)
    job = claim_one(store)
    store.job_request_stop(job.id, "pause")
    cp = Checkpoint(job.id, job.lease_token, [1, 2], 2, None)
    assert store.job_put_back_many([PutBack(cp)]) == AckResult(1, 0)
    r = get(store, job.id)
    assert (r.state, r.attempt, r.cursor, r.progress_done, r.stop_request) == (
        "available",
        0,
        [1, 2],
        2,
        None,
    )
    again = claim_one(store)
    assert again.id == job.id and again.attempt == 1
    assert store.job_iteration_state(lease(again)) == IterationState([1, 2], 2, None, None)
    assert store.job_put_back_many([PutBack(cp)]) == AckResult(0, 1)  # old lease: fenced


def test_put_back_with_a_delay_schedules_the_job(store: Store) -> None:
    insert_one(store)
    job = claim_one(store)
    before = store.now()
    store.job_put_back_many([PutBack(Checkpoint(job.id, job.lease_token, "c"), delay=60)])
    r = get(store, job.id)
    assert (r.state, r.attempt, r.cursor) == ("scheduled", 0, "c")
    assert r.scheduled_at >= before + 59


def test_cancel_running_ends_the_job_cancelled(store: Store) -> None:
    insert_one(store)
    job = claim_one(store)
    assert store.job_request_stop(job.id, "cancel")
    assert not store.job_request_stop(job.id + 1000, "cancel")
    store.job_request_stop(job.id, "pause")  # a pause does not override a cancel
    assert store.job_stop_requests([lease(job)]) == {job.id: "cancel"}
    cp = Checkpoint(job.id, job.lease_token, 41, 41)
    assert store.job_cancel_running_many([cp]) == AckResult(1, 0)
    r = get(store, job.id)
    assert (r.state, r.cursor, r.stop_request) == ("cancelled", 41, None)
    assert r.finished_at is not None
    assert store.job_cancel_running_many([cp]) == AckResult(0, 1)
    assert store.job_stop_requests([lease(job)]) == {}


def test_stop_requests_only_for_running_jobs(store: Store) -> None:
    job_id = insert_one(store)
    assert not store.job_request_stop(job_id, "cancel")  # available: not running
    assert get(store, job_id).stop_request is None
