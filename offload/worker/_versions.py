"""A claimed job's arguments, brought to the version its worker's job type takes
(docs/versions.md).

Older arguments are upgraded step by step before they are bound; an upgrader that fails fails
the attempt, naming the step. A job of a newer version than this worker knows is given back,
its attempt not used, with an error that says so (`refusal`), until its grace period has passed
since its first refusal: from then on its attempts fail with that error, as any other.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from offload._errors import NewerVersionError, UpgradeError
from offload._text import printable
from offload.outcome import backoff_for
from offload.store._contract import ClaimedJob, Store
from offload.store._versions import WAIT_META, Refusal

if TYPE_CHECKING:
    from offload.jobs._type import JobType
    from offload.worker._executor import Outcome

REFUSED = "version"  # Outcome.stopped of a job given back for its version


def arguments(
    job_type: JobType, job: ClaimedJob, outcome: type[Outcome]
) -> dict[str, Any] | Outcome:
    """The job's arguments at the job type's version, or the outcome of the attempt when they
    cannot be had: a failed upgrade, or a version newer than this worker knows."""
    known = job_type.versions.version
    stored = job.version
    if stored == known:
        return job.args
    if stored > known:
        return _newer(job_type, job, known, outcome)
    try:
        return job_type.versions.upgrade(job_type.name, job.args, stored)
    except UpgradeError as exc:
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        tb = "".join(traceback.format_exception(type(cause), cause, cause.__traceback__))
        return outcome(job, False, error=printable(f"UpgradeError: {exc}"), traceback=tb)


def _newer(job_type: JobType, job: ClaimedJob, known: int, outcome: type[Outcome]) -> Outcome:
    """A job of a newer version: given back while its grace period lasts, else failed."""
    grace = job_type.version_grace
    error = _error(
        f"job has argument version {job.version}, this worker knows up to {known} "
        f"({job_type.name}); it waits for a worker that knows version {job.version}"
    )
    since = job.meta.get(WAIT_META) if isinstance(job.meta, dict) else None
    waited = 0.0
    if isinstance(since, (int, float)) and not isinstance(since, bool):
        waited = max(job_type.app.store.now() - float(since), 0.0)
    if waited < grace:
        left = grace - waited
        delay = min(float(backoff_for(job_type.options_.backoff)(max(job.attempt, 1))), left)
        return outcome(job, False, error=error, stopped=REFUSED, delay=delay)
    return outcome(
        job,
        False,
        error=_error(
            f"job has argument version {job.version}, this worker knows up to {known} "
            f"({job_type.name}), and no worker that knows it took the job within its grace "
            f"period of {grace:g} s; deploy version {job.version} of the job type's code"
        ),
    )


def _error(message: str) -> str:
    exc = NewerVersionError(message)
    return f"{type(exc).__name__}: {exc}"


def refusals(outcomes: Sequence[Outcome]) -> list[Refusal]:
    """The refusals among outcomes, as the store gives them back."""
    return [
        Refusal(o.job.id, o.job.lease_token, o.error, o.delay)
        for o in outcomes
        if o.stopped == REFUSED
    ]


def refuse(store: Store, outcomes: Sequence[Outcome]) -> None:
    """Give back the jobs refused for their version (nothing when none was)."""
    found = refusals(outcomes)
    if found:
        store.job_refuse_many(found)
