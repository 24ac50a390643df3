"""A job held back by a limit wakes a listening worker as soon as its key allows it to start,
on every engine: when a job of the key finishes (a freed slot), and when the next rate token is
due (the claim that skipped it knows when). Nothing is timed: a listener either wakes within a
wait far longer than the limit's period, or the wait times out."""

from __future__ import annotations

import pytest

from offload.dispatch._limits import LimitSpec
from offload.store._contract import Listener, Store

from ._helpers import claim, complete, fail, insert, new_job

WAIT = 5.0  # seconds a listener may wait: far past any wake-up due here


def settled(store: Store) -> Listener:
    """A listener of the default queue with nothing pending: it wakes only for what follows."""
    listener = store.listener(["default"])
    while listener.wait(0.05):
        continue
    return listener


@pytest.mark.parametrize("outcome", ["complete", "fail"])
def test_a_finished_job_of_a_saturated_key_wakes_listeners(store: Store, outcome: str) -> None:
    insert(store, *[new_job(limit_key="mutex", limit=LimitSpec(concurrency=1)) for _ in range(2)])
    [running] = claim(store, limit=10)
    assert claim(store, limit=10) == []  # the second waits for the key
    listener = settled(store)
    try:
        if outcome == "complete":
            complete(store, running)
        else:
            fail(store, running, retry_in=3600.0)
        assert listener.wait(WAIT), "no wake-up for the freed slot"
        assert len(claim(store, limit=10)) == 1
    finally:
        listener.close()


def test_a_claim_that_skipped_a_job_for_a_rate_token_wakes_its_listener_when_one_is_due(
    store: Store,
) -> None:
    spec = LimitSpec(rate=4.0, period=1.0, burst=1.0)  # a token every quarter of a second
    insert(store, *[new_job(limit_key="rated", limit=spec) for _ in range(2)])
    assert len(claim(store, limit=10)) == 1  # the only token; the other job is skipped
    listener = settled(store)
    try:
        assert listener.wait(WAIT), "no wake-up when the next token was due"
        assert len(claim(store, limit=10)) == 1
    finally:
        listener.close()


def test_a_key_held_back_by_running_jobs_alone_sets_no_alarm(store: Store) -> None:
    """A mutex key waits for its running job, not for time: no wake-up until it ends."""
    insert(store, *[new_job(limit_key="mutex", limit=LimitSpec(concurrency=1)) for _ in range(2)])
    assert len(claim(store, limit=10)) == 1
    assert claim(store, limit=10) == []
    listener = settled(store)
    try:
        assert not listener.wait(0.5)
    finally:
        listener.close()
