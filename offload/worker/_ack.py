"""Turns run outcomes into the store's batched acknowledgements, applying each job's backoff."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from offload.store._contract import AckResult, Completion, Failure

if TYPE_CHECKING:
    from offload._app import Offload
    from offload.worker._executor import Outcome

UNKNOWN_KIND_BACKOFF = 60.0


def to_acks(app: Offload, outcomes: Sequence[Outcome]) -> tuple[list[Completion], list[Failure]]:
    """Completions for successes; failures with their retry delay, or None when out of
    attempts (the job goes dead)."""
    done: list[Completion] = []
    failed: list[Failure] = []
    for o in outcomes:
        job = o.job
        if o.ok:
            done.append(Completion(job.id, job.lease_token, o.result))
            continue
        retry_in = None
        if job.attempt < job.max_attempts:
            job_type = app.jobs.get(job.kind)
            retry_in = (
                float(job_type.options_.backoff(job.attempt)) if job_type else UNKNOWN_KIND_BACKOFF
            )
        failed.append(Failure(job.id, job.lease_token, o.error, o.traceback, retry_in))
    return done, failed


def acknowledge(
    app: Offload, outcomes: Sequence[Outcome]
) -> tuple[AckResult, AckResult, list[Failure]]:
    """Write outcomes to the store: completions, then failures, each one batch."""
    done, failed = to_acks(app, outcomes)
    return app.store.job_complete_many(done), app.store.job_fail_many(failed), failed
