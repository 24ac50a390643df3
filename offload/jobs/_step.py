"""A saga's step: the job that does the work and the job that undoes it."""

from __future__ import annotations

from dataclasses import dataclass

from offload._errors import ConfigurationError
from offload.jobs._type import PreparedJob


@dataclass(frozen=True, slots=True)
class Step:
    """One step of `app.saga([...])`: `action` runs in order with the other steps; `undo` runs
    when a later step ends dead or cancelled (or the saga is cancelled) after `action` had
    completed. Undo jobs may run more than once (at-least-once): make them idempotent. `name`
    names the step (default: its job type's name)."""

    action: PreparedJob
    undo: PreparedJob | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        for what, job in (("action", self.action), ("undo", self.undo)):
            if job is not None and not isinstance(job, PreparedJob):
                raise ConfigurationError(
                    f"Step's {what} is a job made by job_type.prepare(...), got {job!r}"
                )
        if self.action is None:
            raise ConfigurationError("a Step needs an action: Step(job.prepare(...), undo=...)")
