"""The outcome policy (offload/outcome.py): what an attempt's end means, for every runner."""

from __future__ import annotations

from pathlib import Path

import pytest

import offload
from offload import Adaptive, Exponential, Limit, Offload, Throttled
from offload.dispatch._adaptive import Signal
from offload.outcome import (
    DEFAULT_BACKOFF,
    MISSING_CODE_DELAY,
    Verdict,
    backoff_for,
    decide,
    failure,
    interrupted,
    limit_signal,
    throttle_of,
)
from offload.store._contract import ClaimedJob, Failure, Lease
from offload.testing import drain
from offload.worker._ack import to_acks
from offload.worker._executor import Outcome


def tenfold(attempt: int) -> float:
    return 10.0 * attempt


def _claimed(
    i: int, kind: str = "k", attempt: int = 1, delivery: str = "at_least_once"
) -> ClaimedJob:
    return ClaimedJob(i, kind, "default", {}, {}, attempt, 3, delivery, None, 100 + i, 60.0)


# --- decide -------------------------------------------------------------------------------
def test_a_success_completes() -> None:
    assert decide(ok=True, attempt=3, max_attempts=3, backoff=tenfold) == Verdict("completed")


def test_a_failure_retries_after_the_backoff_while_attempts_remain_then_is_dead() -> None:
    assert decide(ok=False, attempt=1, max_attempts=3, backoff=tenfold) == Verdict(
        "retryable", 10.0
    )
    assert decide(ok=False, attempt=2, max_attempts=3, backoff=tenfold).retry_in == 20.0
    assert decide(ok=False, attempt=3, max_attempts=3, backoff=tenfold) == Verdict("dead")


def test_a_named_delay_replaces_the_backoff_and_not_retryable_is_dead_now() -> None:
    assert decide(ok=False, attempt=1, max_attempts=3, backoff=tenfold, retry_in=0).retry_in == 0.0
    verdict = decide(ok=False, attempt=1, max_attempts=3, backoff=tenfold, retryable=False)
    assert verdict == Verdict("dead")
    with pytest.raises(ValueError, match="retry_in must be a non-negative"):
        decide(ok=False, attempt=1, max_attempts=3, backoff=tenfold, retry_in=-1)


def test_a_throttle_retries_and_gives_its_attempt_back_even_on_the_last_attempt() -> None:
    last = decide(ok=False, attempt=3, max_attempts=3, backoff=tenfold, throttled=True)
    assert last == Verdict("retryable", 30.0, throttled=True)
    told = decide(ok=False, attempt=3, max_attempts=3, backoff=tenfold, throttled=True, retry_in=7)
    assert told == Verdict("retryable", 7.0, throttled=True) and told.retried
    with pytest.raises(ValueError, match="always retried"):
        decide(
            ok=False, attempt=1, max_attempts=3, backoff=tenfold, throttled=True, retryable=False
        )


def test_failure_records_the_verdict() -> None:
    throttle = Verdict("retryable", 5.0, throttled=True)
    assert failure(1, 2, "e", "tb", throttle) == Failure(1, 2, "e", "tb", 5.0, throttled=True)
    assert failure(1, 2, "e", "", Verdict("dead")) == Failure(1, 2, "e", "", None)
    with pytest.raises(ValueError, match="Completion"):
        failure(1, 2, "e", "", Verdict("completed"))


# --- backoff ------------------------------------------------------------------------------
def test_one_default_backoff_for_declared_and_undeclared_kinds(tmp_path: Path) -> None:
    assert offload.Exponential is Exponential
    assert isinstance(DEFAULT_BACKOFF, Exponential) and DEFAULT_BACKOFF == Exponential()
    assert backoff_for(tenfold) is tenfold
    assert backoff_for(None) is DEFAULT_BACKOFF  # a kind its (HTTP) runner has the code of
    assert backoff_for(None, missing_code=True)(5) == MISSING_CODE_DELAY

    app = Offload(f"sqlite:///{tmp_path / 'jobs.db'}")

    @app.job()
    def plain() -> None: ...

    assert app.jobs["plain"].options_.backoff is DEFAULT_BACKOFF
    app.close()


# --- throttles and limits -----------------------------------------------------------------
class Busy(Exception):
    pass


def test_throttle_of_an_exception() -> None:
    adaptive = Adaptive(on=(Busy,))
    assert throttle_of(Throttled(retry_after=4), None) == (True, 4.0)
    assert throttle_of(Throttled(), adaptive) == (True, None)
    assert throttle_of(Busy(), adaptive) == (True, None)
    assert throttle_of(Busy(), None) == (False, None)
    assert throttle_of(ValueError(), adaptive) == (False, None)


def test_limit_signal() -> None:
    adaptive = Adaptive(latency=1.0)
    assert limit_signal(ok=False, throttled=True, duration=0, adaptive=None) == Signal(throttled=1)
    assert limit_signal(ok=True, throttled=False, duration=0, adaptive=None) is None
    assert limit_signal(ok=True, throttled=False, duration=0.5, adaptive=adaptive) == Signal(ok=1)
    assert limit_signal(ok=True, throttled=False, duration=2, adaptive=adaptive) == Signal(slow=1)
    assert limit_signal(ok=True, throttled=False, duration=None, adaptive=adaptive) == Signal(ok=1)
    assert limit_signal(ok=False, throttled=False, duration=0, adaptive=adaptive) == Signal()


# --- crashes ------------------------------------------------------------------------------
def test_interrupted_jobs_go_back_or_die_by_their_delivery() -> None:
    again, dead = interrupted([_claimed(1), _claimed(2, delivery="at_most_once")])
    assert again == [Lease(1, 101)]
    assert dead == [Failure(2, 102, "abandoned: interrupted by worker shutdown")]


# --- the runners use it -------------------------------------------------------------------
def test_the_python_workers_acknowledgements_follow_the_policy(tmp_path: Path) -> None:
    app = Offload(f"sqlite:///{tmp_path / 'jobs.db'}")

    @app.job(backoff=tenfold)
    def k() -> None: ...

    outcomes = [
        Outcome(_claimed(1), True, result=5),
        Outcome(_claimed(2, attempt=3), False, error="bug"),
        Outcome(_claimed(3, attempt=3), False, error="429", throttled=True, retry_after=9),
        Outcome(_claimed(4, attempt=2), False, error="429", throttled=True),
        Outcome(_claimed(5, kind="elsewhere"), False, error="UnknownJobError"),
    ]
    done, failed = to_acks(app, outcomes)
    assert [(c.id, c.result) for c in done] == [(1, 5)]
    assert [(f.id, f.retry_in, f.throttled) for f in failed] == [
        (2, None, False),
        (3, 9.0, True),
        (4, 20.0, True),
        (5, MISSING_CODE_DELAY, False),
    ]
    app.close()


def test_drain_throttles_without_using_up_attempts(tmp_path: Path) -> None:
    app = Offload(f"sqlite:///{tmp_path / 'jobs.db'}")
    calls: list[int] = []

    @app.job(max_attempts=1, limit=Limit("api", concurrency=2, adaptive=Adaptive()))
    def call() -> None:
        calls.append(1)
        raise Throttled("slow down", retry_after=3600)

    job = app.enqueue("call")
    result = drain(app, with_scheduled=True)
    assert (result.ran, result.retried, result.throttled, result.dead) == (1, 1, 1, 0)
    record = job.refresh().record
    assert (record.state, record.attempt) == ("retryable", 0)
    assert [e["kind"] for e in record.errors] == ["throttled"]
    [limit] = [x for x in app.store.limit_list() if x.key == "api"]
    assert limit.concurrency == 1  # cut from 2 by the throttle
    app.close()
