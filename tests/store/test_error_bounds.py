"""A job's error list stays bounded however often it fails (issue: one job grew to 4.4 MB after
60 failed attempts): each entry's texts are bounded, and the entries of its first 3 and last 5
attempts are kept, those between counted in one entry of kind "omitted". On every engine."""

from __future__ import annotations

import json

from offload.store._contract import Failure, Store

from ._helpers import claim_one, get, insert, new_job

BIG_ERROR = "E" * 30_000  # with the traceback, about what the worst attempt stored: 74 KB
BIG_TRACEBACK = "T" * 44_000
ERRORS_FIRST, ERRORS_LAST = 3, 5  # as store/_codec.py says
MAX_ERROR, MAX_TRACEBACK = 2_000, 8_000


def _fail_times(store: Store, job_id: int, times: int, throttled: bool = False) -> None:
    for n in range(times):
        job = claim_one(store)
        assert job.id == job_id
        error = f"attempt {job.attempt} failed: {BIG_ERROR}"
        failure = Failure(
            job.id, job.lease_token, error, f"{BIG_TRACEBACK}<{n}>", 0, throttled=throttled
        )
        assert store.job_fail_many([failure]).applied == 1
        store.job_promote_due()


def test_sixty_failures_keep_the_first_and_last_attempts_and_a_count(store: Store) -> None:
    [job_id] = insert(store, new_job(max_attempts=1000))
    _fail_times(store, job_id, 60)
    r = get(store, job_id)
    assert r.attempt == 60
    attempts = [e["attempt"] for e in r.errors]
    assert attempts == [1, 2, 3, 55, 56, 57, 58, 59, 60]
    assert [e["kind"] for e in r.errors] == ["error"] * 3 + ["omitted"] + ["error"] * 5
    marker = r.errors[ERRORS_FIRST]
    assert marker["omitted"] == 52
    assert marker["error"] == (
        "52 earlier errors left out: a job keeps those of its first 3 and its last 5 attempts"
    )
    assert len(r.errors) == ERRORS_FIRST + 1 + ERRORS_LAST
    for entry in (r.errors[0], r.errors[-1]):
        assert entry["error"].startswith(f"attempt {entry['attempt']} failed: EEE")
        assert entry["error"].endswith("more characters left out)")
        assert len(entry["error"]) < MAX_ERROR + 100
        assert len(entry["traceback"]) < MAX_TRACEBACK + 100
        assert entry["traceback"].endswith(f"<{entry['attempt'] - 1}>")  # its end is kept
    size = len(json.dumps(r.errors))
    assert size < 100_000, size


def test_the_bound_holds_from_the_first_attempt_past_it(store: Store) -> None:
    [job_id] = insert(store, new_job(max_attempts=1000))
    _fail_times(store, job_id, 8)
    assert [e["attempt"] for e in get(store, job_id).errors] == [1, 2, 3, 4, 5, 6, 7, 8]
    _fail_times(store, job_id, 1)
    r = get(store, job_id)
    assert [e["attempt"] for e in r.errors] == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert (r.errors[3]["kind"], r.errors[3]["omitted"]) == ("omitted", 1)
    _fail_times(store, job_id, 1)
    r = get(store, job_id)
    assert [e["attempt"] for e in r.errors] == [1, 2, 3, 5, 6, 7, 8, 9, 10]
    assert r.errors[3]["omitted"] == 2


def test_throttles_count_like_other_entries(store: Store) -> None:
    [job_id] = insert(store, new_job(max_attempts=3))
    _fail_times(store, job_id, 12, throttled=True)
    r = get(store, job_id)
    assert r.attempt == 0  # every throttle gave its attempt back
    assert len(r.errors) == ERRORS_FIRST + 1 + ERRORS_LAST
    assert r.errors[ERRORS_FIRST]["omitted"] == 4
    assert [e["kind"] for e in r.errors] == ["throttled"] * 3 + ["omitted"] + ["throttled"] * 5
