"""What the end of an attempt means, decided in one place for every runner: the Python
worker (offload/worker/_ack.py), HTTP workers (offload/server/_worker_api.py) and
offload.testing's drain and inline mode.

- **Success**: the job completes with its result.
- **Failure**: the job retries after its kind's backoff while attempts remain, else it is dead.
  The backoff is the one its job type declares; a kind this process does not declare (one that
  HTTP workers run) gets `DEFAULT_BACKOFF`, the same default a declared job type gets. A runner
  may name the delay (an HTTP worker's `retry_in`) or say that no retry can help (`retryable`
  false: dead now).
- **Throttle** (`offload.Throttled`, an exception an adaptive limit lists in `on=`, or an HTTP
  worker's `"throttled": true`): the service the job calls pushed back, the job did nothing
  wrong. The job's limit key is told (its adaptive limit is cut), and the job retries after the
  throttle's `retry_after` (else its backoff) with its attempt given back: a throttle never
  makes a job dead.
- **Missing code**: a worker with no job type of that name (a deploy that ships producers
  first) fails the attempt and retries it `MISSING_CODE_DELAY` seconds later, so the job waits
  for a worker that knows it instead of spinning through its attempts.
- **Crash**: a lost worker is charged by the store's rescue (`max_crashes`, docs/crashes.md);
  a worker that stops with jobs still running puts them back as `interrupted` says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from offload._backoff import DEFAULT_BACKOFF, BackoffFn, Exponential, as_backoff
from offload.dispatch._adaptive import Adaptive, Signal, Throttled
from offload.store._contract import ClaimedJob, Failure, Lease

__all__ = [
    "DEFAULT_BACKOFF",
    "MISSING_CODE_DELAY",
    "BackoffFn",
    "Exponential",
    "Verdict",
    "as_backoff",
    "backoff_for",
    "decide",
    "failure",
    "interrupted",
    "limit_signal",
    "throttle_of",
]

MISSING_CODE_DELAY = 60.0  # seconds before a job whose worker lacks its code is tried again
_MISSING_CODE: BackoffFn = as_backoff(MISSING_CODE_DELAY)

Ending = Literal["completed", "retryable", "dead"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one attempt's end means: the job's next state, when it runs again (seconds, for
    a retry), and whether it was a throttle (its attempt given back)."""

    state: Ending
    retry_in: float | None = None
    throttled: bool = False

    @property
    def retried(self) -> bool:
        return self.state == "retryable"


COMPLETED = Verdict("completed")


def backoff_for(declared: BackoffFn | None, *, missing_code: bool = False) -> BackoffFn:
    """The backoff of a job's kind: the one its job type declares; for a kind this process
    does not declare, `DEFAULT_BACKOFF` when its runner has the code (an HTTP worker's kind),
    or a flat `MISSING_CODE_DELAY` when the runner does not (a Python worker that has no job
    type of that name)."""
    if declared is not None:
        return declared
    return _MISSING_CODE if missing_code else DEFAULT_BACKOFF


def decide(
    *,
    ok: bool,
    attempt: int,
    max_attempts: int,
    backoff: BackoffFn,
    throttled: bool = False,
    retry_in: float | None = None,
    retryable: bool = True,
) -> Verdict:
    """The verdict on an attempt (number `attempt` of `max_attempts`) that ended as told.

    `retry_in` names the delay of a retry (a throttle's `retry_after`, an HTTP worker's
    `retry_in`); without it the delay is `backoff(attempt)`. A throttle is always retried and
    gives its attempt back; `retryable=False` (no retry can help) cannot go with it.
    """
    if ok:
        return COMPLETED
    if retry_in is not None and not retry_in >= 0:
        raise ValueError(f"retry_in must be a non-negative number of seconds, got {retry_in!r}")
    if throttled:
        if not retryable:
            raise ValueError("a throttled attempt is always retried: retryable must be true")
        return Verdict("retryable", _delay(backoff, attempt, retry_in), throttled=True)
    if not retryable or attempt >= max_attempts:
        return Verdict("dead")
    return Verdict("retryable", _delay(backoff, attempt, retry_in))


def _delay(backoff: BackoffFn, attempt: int, retry_in: float | None) -> float:
    return float(backoff(attempt)) if retry_in is None else float(retry_in)


def failure(job_id: int, token: int, error: str, traceback: str, verdict: Verdict) -> Failure:
    """The store's record of a failed or throttled attempt, as the verdict says."""
    if verdict.state == "completed":
        raise ValueError("a completed attempt is a Completion, not a Failure")
    return Failure(job_id, token, error, traceback, verdict.retry_in, verdict.throttled)


def throttle_of(exc: BaseException, adaptive: Adaptive | None) -> tuple[bool, float | None]:
    """Whether an exception a job raised is a throttle, and the delay it asks for:
    `offload.Throttled` (with its `retry_after`), or a type the job's adaptive limit lists."""
    if isinstance(exc, Throttled):
        return True, exc.retry_after
    return (adaptive is not None and adaptive.throttles(exc)), None


def limit_signal(
    *, ok: bool, throttled: bool, duration: float | None, adaptive: Adaptive | None
) -> Signal | None:
    """How one run of a job with a limit key counts for that key: a throttle always (an
    adaptive key is cut, another one counts it for stats); for an adaptive key, a success
    (slow when longer than its latency bound; `duration` None: not timed) or nothing; None
    when the run tells the key nothing."""
    if throttled:
        return Signal(throttled=1)
    if adaptive is None:
        return None
    if not ok:
        return Signal()
    if adaptive.latency is not None and duration is not None and duration > adaptive.latency:
        return Signal(slow=1)
    return Signal(ok=1)


def interrupted(jobs: Sequence[ClaimedJob]) -> tuple[list[Lease], list[Failure]]:
    """Jobs that began but had not ended when their worker stopped: at-least-once ones go
    back without an attempt counted (the leases to release); at-most-once ones may have had
    effects, so they are dead (the failures to record), never run twice."""
    again = [Lease(j.id, j.lease_token) for j in jobs if j.delivery == "at_least_once"]
    dead = [
        Failure(j.id, j.lease_token, "abandoned: interrupted by worker shutdown")
        for j in jobs
        if j.delivery != "at_least_once"
    ]
    return again, dead
