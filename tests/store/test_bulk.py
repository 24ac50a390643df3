"""`job_search` and `job_bulk`: jobs found by a filter (states, kind, queue, times, argument
and error text) and retried, cancelled or discarded in batches, each job as the single-job
operations would."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pytest

from offload._errors import ConfigurationError
from offload.store._bulk import MAX_TEXT, WINDOW, JobMatch, walk
from offload.store._contract import Completion, Failure, Store

from . import _raw
from ._helpers import (
    claim,
    claim_one,
    complete,
    counter,
    fail,
    get,
    insert,
    insert_one,
    lease,
    new_job,
    wait_for_clock,
)


def _found(store: Store, **match: Any) -> list[int]:
    return [r.id for r in store.job_search(JobMatch(**match), limit=100)]


def _dead(store: Store, n: int, error: str = "boom", **fields: Any) -> list[int]:
    """`n` jobs of queue `dq` that died with `error`."""
    ids = insert(store, *[new_job(queue="dq", **fields) for _ in range(n)])
    jobs = claim(store, ["dq"], limit=n)
    assert store.job_fail_many([Failure(j.id, j.lease_token, error, "tb") for j in jobs]).applied
    return ids


# --- search -------------------------------------------------------------------------------
def test_search_by_state_kind_and_queue_newest_first(store: Store) -> None:
    a, b, c = insert(store, new_job(kind="x"), new_job(kind="y", queue="q"), new_job(kind="x"))
    dead = _dead(store, 1, kind="x")[0]
    assert _found(store) == [dead, c, b, a]
    assert _found(store, kind="x") == [dead, c, a]
    assert _found(store, queue="q") == [b]
    assert _found(store, states=("dead",)) == [dead]
    assert _found(store, states=("available", "dead"), kind="x") == [dead, c, a]
    assert _found(store, kind="nothing") == []
    assert [r.id for r in store.job_search(JobMatch(), limit=2)] == [dead, c]  # pages
    assert [r.id for r in store.job_search(JobMatch(), limit=2, before_id=c)] == [b, a]


def test_argument_text_is_a_case_insensitive_substring(store: Store) -> None:
    alice, bob, odd = insert(
        store,
        new_job(args={"email": "Alice@Example.com", "n": 7}),
        new_job(args={"email": "bob@example.com"}),
        new_job(args={"note": "100%_sure"}),
    )
    assert _found(store, args_contain="alice@example") == [alice]
    assert _found(store, args_contain="EXAMPLE.COM") == [bob, alice]
    assert _found(store, args_contain="email") == [bob, alice]  # a key is text too
    # no character is a wildcard: % and _ stand for themselves
    assert _found(store, args_contain="%_s") == [odd]
    assert _found(store, args_contain="0%") == [odd]
    assert _found(store, args_contain="_") == [odd]
    assert _found(store, args_contain="zed") == []


def test_error_text_matches_the_last_error(store: Store) -> None:
    first = insert_one(store, queue="e", max_attempts=3)
    fail(store, claim_one(store, "e"), retry_in=0.0, error="ConnectionError: refused")
    store.job_retry(first)
    fail(store, claim_one(store, "e"), retry_in=None, error="ValueError: bad input")
    other = _dead(store, 1, error="ConnectionError: reset")[0]
    insert_one(store)  # no errors at all
    assert _found(store, error_contain="connectionerror") == [other]
    assert _found(store, error_contain="BAD INPUT") == [first]
    assert _found(store, error_contain="Error:") == [other, first]


def test_search_by_insert_and_finish_time(store: Store) -> None:
    early = insert_one(store, queue="t")
    complete(store, claim_one(store, "t"))
    middle = store.now()
    wait_for_clock(store, middle)
    late = insert_one(store, queue="t")
    complete(store, claim_one(store, "t"))
    waiting = insert_one(store)
    assert _found(store, inserted_since=middle) == [waiting, late]
    assert _found(store, inserted_until=middle) == [early]
    assert _found(store, finished_since=middle) == [late]  # an unfinished job has no finish
    assert _found(store, finished_until=middle) == [early]
    assert _found(store, inserted_since=middle, inserted_until=middle) == []


def test_search_survives_errors_that_are_not_a_list(store: Store) -> None:
    damaged, dead = insert_one(store), _dead(store, 1, error="kaput")[0]
    _raw.overwrite(store, damaged, "errors", '{"error": "kaput"}')
    assert _found(store, error_contain="kaput") == [dead]
    assert store.job_bulk("discard", JobMatch(error_contain="kaput")).count == 1
    assert store.job_get(damaged) is not None


# --- bulk ---------------------------------------------------------------------------------
def test_a_dry_run_counts_and_changes_nothing(store: Store) -> None:
    dead = _dead(store, 3)
    waiting = insert(store, new_job(), new_job())
    before = [asdict(get(store, i)) for i in dead + waiting]
    assert store.job_bulk("retry", JobMatch(states=("dead",)), dry_run=True).count == 3
    assert store.job_bulk("retry", JobMatch(), dry_run=True).count == 3  # available: no
    assert store.job_bulk("cancel", JobMatch(), dry_run=True).count == 2
    assert store.job_bulk("discard", JobMatch(), dry_run=True).count == 5
    assert store.job_retry_where(JobMatch(queue="dq"), dry_run=True) == 3
    assert store.job_cancel_where(JobMatch(queue="default"), dry_run=True) == 2
    assert store.job_discard_where(JobMatch(states=("available",)), dry_run=True) == 2
    result = store.job_bulk("discard", JobMatch(queue="dq"), dry_run=True)
    assert (result.action, result.dry_run, result.count) == ("discard", True, 3)
    assert [asdict(get(store, i)) for i in dead + waiting] == before
    # an action that applies to none of the states asked for does nothing
    assert store.job_bulk("cancel", JobMatch(states=("dead",))).count == 0
    assert store.job_bulk("retry", JobMatch(states=("running", "available"))).count == 0
    assert [asdict(get(store, i)) for i in dead + waiting] == before


def test_bulk_retry_does_what_a_single_retry_does(store: Store) -> None:
    single, *bulk = _dead(store, 4, error="ConnectionError: refused")
    assert store.job_retry(single)
    result = store.job_bulk("retry", JobMatch(states=("dead",), error_contain="connection"))
    assert (result.action, result.dry_run, result.count) == ("retry", False, 3)
    expected = get(store, single)
    for job_id in bulk:
        r = get(store, job_id)
        assert r.state == "available"
        assert (r.max_attempts, r.attempt, r.finished_at, r.result, r.errors) == (
            expected.max_attempts,
            expected.attempt,
            None,
            None,
            expected.errors,
        )
        assert r.scheduled_at >= expected.scheduled_at
    assert len(claim(store, ["dq"])) == 4  # all four run again


def test_bulk_retry_wakes_workers(store: Store) -> None:
    _dead(store, 2)
    listener = store.listener(["dq"])
    try:
        while listener.wait(0.0):  # forget what happened before
            pass
        assert store.job_bulk("retry", JobMatch(queue="dq")).count == 2
        assert listener.wait(10.0)
    finally:
        listener.close()


def test_bulk_cancel_leaves_running_and_finished_jobs_alone(store: Store) -> None:
    running = insert_one(store, kind="c", queue="r")
    claim_one(store, "r")
    dead = _dead(store, 1, kind="c")[0]
    scheduled = insert_one(store, kind="c", scheduled_at=store.now() + 3600)
    available = insert_one(store, kind="c")
    other_kind = insert_one(store, kind="d")
    result = store.job_bulk("cancel", JobMatch(kind="c"))
    assert result.count == 2
    states = {i: get(store, i).state for i in (running, dead, scheduled, available, other_kind)}
    assert states == {
        running: "running",
        dead: "dead",
        scheduled: "cancelled",
        available: "cancelled",
        other_kind: "available",
    }
    assert get(store, available).finished_at is not None
    assert store.job_bulk("cancel", JobMatch(kind="c")).count == 0  # nothing left to cancel


def test_bulk_discard_keeps_the_totals_and_fences_running_jobs(store: Store) -> None:
    _dead(store, 2, kind="gone")
    done = insert_one(store, kind="gone", queue="c")
    complete(store, claim_one(store, "c"))
    insert_one(store, kind="gone", queue="r")
    running = claim_one(store, "r")
    keep = insert_one(store, kind="kept")
    totals = store.job_totals()
    assert store.job_bulk("discard", JobMatch(kind="gone"), batch=2).count == 4
    assert store.job_totals() == totals  # what they counted stays
    assert store.job_get(done) is None and store.job_get(running.id) is None
    assert store.job_get(keep) is not None
    assert store.job_heartbeat([lease(running)], 60.0) == [running.id]
    stale = counter(store, "stale_acks")
    ack = store.job_complete_many([Completion(running.id, running.lease_token, "late")])
    assert (ack.applied, ack.stale) == (0, 1)
    assert counter(store, "stale_acks") == stale + 1


@pytest.mark.parametrize("batch", [1, 500])
def test_every_matching_job_is_acted_on_whatever_the_batch(store: Store, batch: int) -> None:
    # 50 jobs span several windows of ids when a batch is one or two jobs (store/_bulk.py)
    jobs = [new_job(args={"i": i, "tag": "x" if i % 7 == 3 else "y"}) for i in range(50)]
    ids = insert(store, *jobs)
    tagged = [i for n, i in enumerate(ids) if n % 7 == 3]
    result = store.job_bulk("cancel", JobMatch(args_contain='"x"'), batch=batch)
    assert result.count == len(tagged) == 7
    assert sorted(_found(store, states=("cancelled",))) == tagged
    assert store.job_bulk("discard", JobMatch(states=("available",)), batch=batch).count == 43
    assert store.job_bulk("discard", JobMatch(), dry_run=True).count == 7


def test_the_walk_bounds_every_step_and_ends() -> None:
    steps: list[tuple[int, int]] = []
    matching = [5, 6, 7, 8, 60, 61, 200]

    def step(after: int, upto: int) -> tuple[int | None, int, int]:
        steps.append((after, upto))
        picked = [i for i in matching if after < i <= upto][:2]
        return (picked[-1] if picked else None), len(picked), len(picked)

    assert walk(3, 200, 2, step) == 7
    assert all(upto - after <= WINDOW * 2 for after, upto in steps)
    assert steps[0] == (3, 3 + WINDOW * 2) and steps[-1][1] == 200
    assert walk(10, 10, 2, step) == 0  # an empty store: no step


def test_bulk_by_time_and_queue(store: Store) -> None:
    old = _dead(store, 2)
    middle = store.now()
    wait_for_clock(store, middle)
    new = _dead(store, 2)
    assert store.job_bulk("retry", JobMatch(finished_since=middle), dry_run=True).count == 2
    assert store.job_bulk("retry", JobMatch(queue="dq", inserted_until=middle)).count == 2
    assert [get(store, i).state for i in old + new] == ["available"] * 2 + ["dead"] * 2


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"states": ("lost",)}, "unknown job state 'lost'"),
        ({"states": "dead"}, "tuple of state names"),
        ({"args_contain": ""}, "non-empty"),
        ({"args_contain": "x" * (MAX_TEXT + 1)}, f"at most {MAX_TEXT}"),
        ({"error_contain": "a\x00b"}, "NUL"),
        ({"kind": "a\x00"}, "NUL"),
        ({"queue": "\ud800"}, "lone surrogate"),
        ({"kind": ""}, "non-empty"),
    ],
)
def test_a_bad_filter_is_refused_with_its_reason(fields: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        JobMatch(**fields)


def test_an_unknown_action_or_batch_is_refused(store: Store) -> None:
    with pytest.raises(ConfigurationError, match="unknown bulk action 'delete'"):
        store.job_bulk("delete", JobMatch())
    with pytest.raises(ConfigurationError, match="batch"):
        store.job_bulk("retry", JobMatch(), batch=0)


def test_an_empty_match_says_so() -> None:
    assert JobMatch().empty
    assert not JobMatch(queue="q").empty
    assert not JobMatch(inserted_since=0.0).empty


@pytest.mark.engine("sqlite")  # only SQLite can hold a name that is not UTF-8
def test_a_damaged_name_does_not_stop_a_bulk_discard(store: Store) -> None:
    damaged, plain = insert(store, new_job(kind="kindname"), new_job(kind="kindname"))
    _raw.flip_byte(store, damaged, "kind", 2)
    assert store.job_bulk("discard", JobMatch(queue="default")).count == 2
    assert store.job_get(damaged) is None and store.job_get(plain) is None


def test_bulk_operations_join_a_store_transaction(store: Store) -> None:
    ids = insert(store, new_job(), new_job(), new_job())
    with pytest.raises(RuntimeError, match="changed my mind"):
        with store.transaction() as tx:
            assert tx.job_bulk("cancel", JobMatch(queue="default"), batch=2).count == 3
            raise RuntimeError("changed my mind")
    assert [get(store, i).state for i in ids] == ["available"] * 3  # every batch rolled back
    with store.transaction() as tx:
        assert tx.job_bulk("discard", JobMatch(queue="default"), batch=2).count == 3
        assert tx.job_search(JobMatch()) == []
    assert store.job_bulk("discard", JobMatch(), dry_run=True).count == 0


def test_bulk_retry_places_a_job_in_its_lane_as_a_single_retry_does(store: Store) -> None:
    # two lanes alike: the first job died, the second waits behind where it was; in one lane
    # it is retried alone, in the other in bulk: both move up to the waiting job's place
    died = {}
    for queue in ("qa", "qb"):
        first, _ = insert(store, new_job(queue=queue, max_attempts=1), new_job(queue=queue))
        died[queue] = first
        claimed = {j.id: j for j in claim(store, [queue], limit=2)}
        dying = claimed.pop(first)
        assert store.job_fail_many([Failure(dying.id, dying.lease_token, "x")]).applied == 1
        assert store.job_release_many([lease(j) for j in claimed.values()]) == 1
    alone, bulk = died["qa"], died["qb"]
    assert store.job_retry(alone)
    assert store.job_bulk("retry", JobMatch(queue="qb", states=("dead",))).count == 1
    assert get(store, bulk).order_key == get(store, alone).order_key
    assert [j.queue for j in claim(store, ["qa"])] == ["qa", "qa"]
