"""Turns run outcomes into the store's batched acknowledgements, as the outcome policy
(offload/outcome.py) decides: completions, retries with backoff, deaths and throttles."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from offload.dispatch._adaptive import Signal
from offload.outcome import backoff_for, decide, failure, limit_signal
from offload.store._contract import AckResult, ClaimedJob, Completion, Failure
from offload.store._dispatch import LimitReport
from offload.store._workflows import META_KEY

if TYPE_CHECKING:
    from offload.app._offload import Offload
    from offload.worker._executor import Outcome


def to_acks(app: Offload, outcomes: Sequence[Outcome]) -> tuple[list[Completion], list[Failure]]:
    """Completions for successes; failures with their retry delay, or None when out of
    attempts (the job goes dead); throttles with their attempt given back."""
    done: list[Completion] = []
    failed: list[Failure] = []
    for o in outcomes:
        job = o.job
        if o.stopped:  # put back or ended cancelled (worker/_iteration.py writes it)
            continue
        step = META_KEY in job.meta  # a workflow's step: the store advances its workflow
        if o.ok:
            done.append(Completion(job.id, job.lease_token, o.result, step))
            continue
        job_type = app.jobs.get(job.kind)
        verdict = decide(
            ok=False,
            attempt=job.attempt,
            max_attempts=job.max_attempts,
            backoff=backoff_for(
                job_type.options_.backoff if job_type else None, missing_code=job_type is None
            ),
            throttled=o.throttled,
            retry_in=o.retry_after,  # offload.Throttled(retry_after=...) says when
        )
        f = failure(job.id, job.lease_token, o.error, o.traceback, verdict)
        failed.append(replace(f, step=step))
    return done, failed


def acknowledge(
    app: Offload, outcomes: Sequence[Outcome]
) -> tuple[AckResult, AckResult, list[Failure]]:
    """Write outcomes to the store: what long jobs carry (checkpoints, put-backs, cancels),
    then completions, then failures, each one batch."""
    from offload.worker._iteration import carries, write

    if carries(outcomes):
        write(app.store, outcomes)
    done, failed = to_acks(app, outcomes)
    acks = app.store.job_complete_many(done), app.store.job_fail_many(failed), failed
    count_failures(app, failed, (o.job for o in outcomes), acks[1])
    report_limits(app, outcomes)
    return acks


def count_failures(
    app: Offload, failed: Sequence[Failure], jobs: Iterable[ClaimedJob], ack: AckResult
) -> None:
    """Tally the failed attempts the store recorded, for its totals (offload/app/_tally.py). When
    some were stale the store does not say which: the first `applied` of the batch count."""
    if not ack.applied:
        return
    by_id = {j.id: j for j in jobs}
    for f in failed[: ack.applied]:
        job = by_id.get(f.id)
        if job is not None:
            app.tally.failed(job.queue, job.kind, retried=f.retry_in is not None)


def limit_reports(app: Offload, outcomes: Sequence[Outcome]) -> list[LimitReport]:
    """What runs of limited jobs said, per key, for the store to adapt adaptive keys: every
    outcome of an adaptive key's jobs, and the throttles of other keys (for stats)."""
    signals: dict[str, Signal] = {}
    for o in outcomes:
        key = o.job.limit_key
        if key is None:
            continue
        job_type = app.jobs.get(o.job.kind)
        limit = job_type.options_.limit if job_type is not None else None
        adaptive = limit.adaptive if limit is not None else None
        signal = limit_signal(
            ok=o.ok, throttled=o.throttled, duration=o.duration, adaptive=adaptive
        )
        if signal is None:
            continue
        s = signals.get(key, Signal())
        signals[key] = Signal(
            s.ok + signal.ok, s.throttled + signal.throttled, s.slow + signal.slow
        )
    return [LimitReport(k, s.ok, s.throttled, s.slow) for k, s in sorted(signals.items())]


def report_limits(app: Offload, outcomes: Sequence[Outcome]) -> None:
    """Send `limit_reports` to the store (nothing when no limited job ran)."""
    reports = limit_reports(app, outcomes)
    if reports:
        app.store.limit_report(reports)
