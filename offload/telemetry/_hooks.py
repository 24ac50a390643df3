"""Hooks and middleware (docs/hooks.md): code the application registers to wrap enqueue and
job runs, and callbacks on a job's lifecycle events.

Middleware is a generator function that yields once: the code before `yield` runs before the
wrapped step, the code after it once the step is done (the run's outcome is on its argument
then). It runs in the job's own thread (sync jobs) or task (async jobs), so context variables it
sets (a tracing span, an error-reporting scope) are the job code's. A hook that raises is logged
and left out; the job runs and is acknowledged all the same.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from offload._errors import JobTimeoutError

log = logging.getLogger("offload.hooks")

EVENTS = (
    "enqueued",
    "claimed",
    "started",
    "succeeded",
    "failed",
    "retried",
    "dead",
    "shed",
    "stale_ack",
)

Middleware = Callable[[Any], Generator[None, None, None]]
Callback = Callable[["JobEvent"], None]


@dataclass(slots=True)
class JobRun:
    """One attempt of a job, as run middleware and log lines see it. After the middleware's
    `yield`: `outcome` ("succeeded", "retried", "dead", "throttled" or "stopped"),
    `error` (the error line) and `exception` (what the job raised, None otherwise)."""

    id: int
    kind: str
    queue: str
    attempt: int
    max_attempts: int
    tenant: str | None
    meta: Mapping[str, Any]
    args: Mapping[str, Any]
    outcome: str | None = None
    error: str | None = None
    exception: BaseException | None = None
    duration: float | None = None
    # Fields every log line written during the run carries (tracing adds trace_id, span_id).
    log_fields: dict[str, Any] = field(default_factory=dict)

    @property
    def correlation_id(self) -> int | str:
        """The id shared by a job and the jobs it caused: its root's (or parent's) id when it
        has one, else its own."""
        return correlation_of(self.id, self.meta)


@dataclass(slots=True)
class EnqueuedJob:
    """A job being enqueued, as enqueue middleware sees it: `meta` may be changed before the
    `yield` (it is stored with the job); `id` is set after it."""

    kind: str
    queue: str
    tenant: str | None
    meta: dict[str, Any]
    args: Mapping[str, Any]
    id: int | None = None


@dataclass(slots=True)
class JobEvent:
    """A lifecycle event: its name, the job (None for `stale_ack`), and what the event says
    (`error` of a failure, `retry_in` of a retry, `count` of stale acknowledgements or of a
    claim batch, `jobs` of a claim batch)."""

    name: str
    job: JobRun | EnqueuedJob | None = None
    error: str | None = None
    retry_in: float | None = None
    count: int = 1
    reason: str | None = None
    jobs: list[JobRun] = field(default_factory=list)


def correlation_of(job_id: int | None, meta: Mapping[str, Any]) -> int | str:
    """A job's correlation id: `correlation_id` in its meta, else its root's or parent's id,
    else its own id."""
    for key in ("correlation_id", "root_id", "parent_id"):
        value = meta.get(key)
        if value is not None:
            return value  # type: ignore[no-any-return]
    return job_id if job_id is not None else ""


def run_of(job: Any) -> JobRun:
    """The hooks' view of a claimed job (store/_contract.py's ClaimedJob)."""
    meta = job.meta
    root = getattr(job, "root_id", None)  # a job record's; the claim may carry it one day
    if root is not None and "root_id" not in meta:
        meta = {**meta, "root_id": root}
    return JobRun(
        job.id, job.kind, job.queue, job.attempt, job.max_attempts, job.tenant, meta, job.args
    )


CURRENT_RUN: contextvars.ContextVar[JobRun | None] = contextvars.ContextVar(
    "offload_current_run", default=None
)


def current_run() -> JobRun | None:
    """The attempt running in this thread or task, for log lines and integrations."""
    return CURRENT_RUN.get()


class Hooks:
    """The middleware and event callbacks of one application."""

    def __init__(self) -> None:
        self.run_middleware: list[Middleware] = []
        self.enqueue_middleware: list[Middleware] = []
        self.callbacks: dict[str, list[Callback]] = {}

    def add_middleware(self, fn: Middleware, *, enqueue: bool = False) -> Middleware:
        if not inspect.isgeneratorfunction(fn):
            raise TypeError(
                f"middleware {getattr(fn, '__name__', fn)!r} must be a generator function "
                "that yields once (code before `yield` runs before, code after it after)"
            )
        (self.enqueue_middleware if enqueue else self.run_middleware).append(fn)
        return fn

    def on(self, event: str, fn: Callback) -> Callback:
        if event not in EVENTS:
            raise ValueError(f"unknown event {event!r}: one of {', '.join(EVENTS)}")
        self.callbacks.setdefault(event, []).append(fn)
        return fn

    def wants(self, event: str) -> bool:
        return event in self.callbacks

    def emit(self, event: JobEvent) -> None:
        """Call the callbacks of an event; one that raises is logged and the others run."""
        for fn in self.callbacks.get(event.name, ()):
            try:
                fn(event)
            except Exception:
                log.exception("offload hook %s on %r failed", _name(fn), event.name)

    # --- runs ---------------------------------------------------------------------------
    def start(self, job: Any) -> Started:
        """Before a job's attempt, in its thread or task: make it the current run, emit
        `started` and enter the run middleware."""
        run = run_of(job)
        token = CURRENT_RUN.set(run)
        if "started" in self.callbacks:
            self.emit(JobEvent("started", run))
        return Started(run, token, _enter(self.run_middleware, run))

    # --- enqueue ------------------------------------------------------------------------
    def enqueueing(self, jobs: list[EnqueuedJob]) -> list[Generator[None, None, None]]:
        return _enter(self.enqueue_middleware, jobs)

    def enqueued(self, jobs: list[EnqueuedJob], entered: list[Generator[None, None, None]]) -> None:
        _exit(entered)
        if "enqueued" in self.callbacks:
            for job in jobs:
                self.emit(JobEvent("enqueued", job))


class Started:
    """A run whose middleware was entered: `end` leaves it with the attempt's outcome."""

    __slots__ = ("entered", "run", "token")

    def __init__(
        self,
        run: JobRun,
        token: contextvars.Token[JobRun | None],
        entered: list[Generator[None, None, None]],
    ) -> None:
        self.run = run
        self.token = token
        self.entered = entered

    def end(
        self,
        ok: bool,
        *,
        error: str = "",
        exception: BaseException | None = None,
        throttled: bool = False,
        stopped: str | None = None,
        duration: float | None = None,
    ) -> None:
        run = self.run
        run.outcome = outcome_name(
            ok, run.attempt, run.max_attempts, throttled=throttled, stopped=stopped
        )
        run.error = error or None
        run.exception = exception
        run.duration = duration
        try:
            _exit(self.entered)
        finally:
            run.exception = None  # no traceback (and its frames) kept past the hooks
            try:
                CURRENT_RUN.reset(self.token)
            except ValueError:  # reset in another context: nothing to restore there
                CURRENT_RUN.set(None)


def outcome_name(
    ok: bool, attempt: int, max_attempts: int, *, throttled: bool = False, stopped: str | None
) -> str:
    """What an attempt's end means, in the words hooks use (the outcome policy's verdict,
    offload/outcome.py, for a Python worker's attempt)."""
    if stopped:
        return "stopped"
    if ok:
        return "succeeded"
    if throttled:
        return "throttled"
    return "dead" if attempt >= max_attempts else "retried"


def _enter(middleware: Iterable[Middleware], arg: Any) -> list[Generator[None, None, None]]:
    entered: list[Generator[None, None, None]] = []
    for fn in middleware:
        try:
            gen = fn(arg)
            next(gen)
        except StopIteration:
            log.error("offload middleware %s returned without yielding: skipped", _name(fn))
            continue
        except JobTimeoutError:  # raised into the job's thread: the run is over
            raise
        except Exception:
            log.exception("offload middleware %s failed before its yield: skipped", _name(fn))
            continue
        entered.append(gen)
    return entered


def _exit(entered: list[Generator[None, None, None]]) -> None:
    for gen in reversed(entered):
        try:
            next(gen)
        except StopIteration:
            continue
        except JobTimeoutError:
            raise
        except Exception:
            log.exception("offload middleware %s failed after its yield", _name(gen))
            continue
        log.error("offload middleware %s yielded more than once: closed", _name(gen))
        gen.close()


def _name(fn: Any) -> str:
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn))
