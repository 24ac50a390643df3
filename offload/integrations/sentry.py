"""Sentry (`pip install 'offload[sentry]'`, docs/sentry.md), built on the app's hooks: the
exception of every failed attempt is reported with the job's context (kind, id, attempt,
queue, tenant, correlation id) as tags and a context, and an attempt that leaves its job dead
is reported at level `fatal` with the tag `offload.dead: yes`. Throttles are not errors and are
not reported. Each attempt runs in a Sentry isolation scope of its own, so breadcrumbs and tags
of one job never leak into another's reports.

sentry_sdk is imported here only, when `instrument` is called; call `sentry_sdk.init(...)` as
usual, in producers and workers alike.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Literal

from offload import JobRun, Offload

REPORTED = ("retried", "dead")  # the outcomes of a failed attempt (a throttle is not one)


def instrument(app: Offload) -> None:
    """Report `app`'s failed attempts to Sentry. Calling it again changes nothing."""
    if getattr(app, "_offload_sentry", False):
        return
    import sentry_sdk

    def offload_sentry(run: JobRun) -> Generator[None, None, None]:
        with sentry_sdk.isolation_scope() as scope:
            job: dict[str, Any] = {
                "id": run.id,
                "kind": run.kind,
                "queue": run.queue,
                "attempt": run.attempt,
                "max_attempts": run.max_attempts,
                "tenant": run.tenant,
                "correlation_id": run.correlation_id,
            }
            scope.set_context("offload job", job)
            for key in ("kind", "queue", "attempt", "tenant", "correlation_id"):
                if job[key] is not None:
                    scope.set_tag(f"offload.{key}", str(job[key]))
            scope.set_tag("offload.job_id", str(run.id))
            yield
            if run.outcome not in REPORTED:
                return
            dead = run.outcome == "dead"
            scope.set_tag("offload.outcome", run.outcome or "")
            scope.set_tag("offload.dead", "yes" if dead else "no")
            level: Literal["fatal", "error"] = "fatal" if dead else "error"
            if run.exception is not None:
                scope.set_level(level)
                sentry_sdk.capture_exception(run.exception)
            else:  # ended without an exception of its own: a timeout, arguments that don't fit
                sentry_sdk.capture_message(run.error or "job attempt failed", level=level)

    app.middleware(offload_sentry)
    app._offload_sentry = True  # type: ignore[attr-defined]
