"""The running job's context: `offload.current_job()` inside a job's code.

The executor sets it around each run (sync code on its thread, async code in its task), so
`offload.testing`'s drain and inline mode, which run jobs on the real executor, set it too. Its
`complete(tx, result)` completes the running job inside a store transaction, fenced by the
lease token like any acknowledgement, so that the job's completion and the jobs it enqueues in
that transaction commit together (or not at all). A job that completed itself is not
acknowledged again when its function returns.

For long jobs (docs/long-jobs.md) the context also holds the job's tenant and meta, an
iteration job's cursor, the progress it reports (stored by the worker within about a second, or
with its outcome), whether it should stop (`stop_requested`: its worker's shutdown, its time
slice, a cancel or pause request read from the store, or its type's `throttle_on`), and
`snooze(seconds)`, which ends the run and puts the job back without using an attempt.
"""

from __future__ import annotations

import math
import threading
import time
from contextvars import ContextVar
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from offload._errors import ConfigurationError, StoreError
from offload._redact import mask_url
from offload.jobs._encrypt import seal_result
from offload.jobs._payload import check_json
from offload.store._contract import Checkpoint, ClaimedJob, Completion, Store
from offload.store._workflows import step_of

if TYPE_CHECKING:
    from offload.app._offload import Offload

# The running job as a cell [app, claimed job, its JobContext once asked for, the executor's
# run]: the executor sets one per run, and the context object is only made when the job's code
# asks for it.
CURRENT: ContextVar[list[Any] | None] = ContextVar("offload_current_job", default=None)

THROTTLE_DELAY = 30.0  # seconds an iteration job waits when throttle_on returns True
THROTTLE_EVERY = 1.0  # seconds between calls of a job type's throttle_on


class Run(Protocol):
    """What the context sees of the executor's run of a job: the stop request read for it
    from the store ('cancel', 'pause'), the worker's shutdown, when it began (monotonic), and
    whether the worker should poll its stop requests (`watched`)."""

    stop: str | None
    halt: threading.Event
    started: float
    watched: bool


class Snooze(BaseException):  # noqa: N818 - a signal like GeneratorExit, not an error
    """Raised by `JobContext.snooze`: the run ends and the job runs again after `seconds`,
    no attempt used. A BaseException, so that the job's `except Exception` does not catch it."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


def max_run_time(app: Offload, job: ClaimedJob) -> float | None:
    """A job's time slice: given at enqueue (stored in its meta), else its type's, else the
    application's default (docs/long-jobs.md)."""
    given = job.meta.get("max_run_time") if job.meta else None
    if isinstance(given, (int, float)) and not isinstance(given, bool) and given > 0:
        return float(given)
    job_type = app.jobs.get(job.kind)
    if job_type is not None and job_type.options_.max_run_time is not None:
        return job_type.options_.max_run_time
    return app.config.max_run_time


class JobContext:
    """The job being run here: its id, type, queue, attempt (1 on the first run), tenant, meta
    and lease token; an iteration job's `cursor`; `progress(done, total)`; `stop_requested`;
    `snooze(seconds)`; and `complete(tx, result)` to complete it inside a store transaction."""

    __slots__ = (
        "app",
        "id",
        "kind",
        "queue",
        "attempt",
        "max_attempts",
        "lease_token",
        "tenant",
        "meta",
        "cursor",
        "done",
        "total",
        "_job",
        "_run",
        "_done",
        "_explicit",
        "_dirty",
        "_since",
        "_slice_end",
        "_throttle",
        "_throttle_at",
        "_throttled",
    )

    def __init__(self, app: Offload, job: ClaimedJob, run: Run | None = None) -> None:
        self.app = app
        self.id = job.id
        self.kind = job.kind
        self.queue = job.queue
        self.attempt = job.attempt
        self.max_attempts = job.max_attempts
        self.lease_token = job.lease_token
        self.tenant = job.tenant
        self.meta = job.meta
        self.cursor: Any = None  # an iteration job's last cursor (None: from the start)
        self.done: float | None = None  # progress: items done so far, and of how many
        self.total: float | None = None
        self._job = job
        self._run = run
        self._done = False
        self._explicit = False  # progress() was called: yields no longer count items
        self._dirty = False  # progress changed since it was last stored
        self._since: tuple[float, float] | None = None  # (monotonic, done) when counting began
        limit = max_run_time(app, job)
        began = run.started if run is not None else time.monotonic()
        self._slice_end = math.inf if limit is None else began + limit
        job_type = app.jobs.get(job.kind)
        self._throttle = job_type.options_.throttle_on if job_type is not None else None
        self._throttle_at = -math.inf
        self._throttled: float | None = None  # seconds to wait, once throttle_on said so

    def __repr__(self) -> str:
        return f"<JobContext {self.kind} id={self.id} attempt={self.attempt}>"

    # --- progress ---------------------------------------------------------------------
    def progress(self, done: float | None = None, total: float | None = None) -> None:
        """Say how far the job is: `done` of `total` (None: as before). Stored within about
        a second, shown by `job.refresh()`, the HTTP API, `offload jobs show` and the
        dashboard. An iteration job counts its yields as `done` until it calls this."""
        for name, value in (("done", done), ("total", total)):
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value < 0
            ):
                raise ConfigurationError(
                    f"progress(): {name} must be a non-negative number, got {value!r}"
                )
        if done is not None:
            self._explicit = True
            self.done = done
        if total is not None:
            self.total = total
        self._count_from()
        self._dirty = True
        if self._run is not None:
            self._run.watched = True  # the worker stores it within a second

    def counted(self) -> None:
        """An iteration job yielded: one more item done, unless it reports its own progress."""
        if not self._explicit:
            self.done = (self.done or 0) + 1
            self._count_from()
            self._dirty = True

    def _count_from(self) -> None:
        if self._since is None:
            self._since = (time.monotonic(), float(self.done or 0))

    def remaining(self) -> float | None:
        """Seconds the job still needs at the rate of this run, when a total is known."""
        if self._since is None or self.total is None or self.done is None:
            return None
        began, first = self._since
        elapsed = time.monotonic() - began
        rate = (self.done - first) / elapsed if elapsed > 0 else 0.0
        if rate <= 0:
            return None
        return max(self.total - self.done, 0) / rate

    def checkpoint(self, has_cursor: bool) -> Checkpoint:
        """Where the job stands, to store (its cursor too when `has_cursor`)."""
        self._dirty = False
        return Checkpoint(
            self.id,
            self.lease_token,
            self.cursor,
            self.done,
            self.total,
            self.remaining(),
            has_cursor,
        )

    @property
    def unsaved(self) -> bool:
        """Whether progress changed since it was last stored."""
        return self._dirty

    # --- stopping ---------------------------------------------------------------------
    @property
    def stop_requested(self) -> bool:
        """True once the job should stop: its worker is shutting down, its time slice
        (`max_run_time`) is over, it was cancelled, its queue or type was paused, or its
        type's `throttle_on` returns true. An iteration job stops at its next yield by
        itself; other code may check this and end early."""
        return self.stop_reason() is not None

    def stop_reason(self) -> str | None:
        """Why the job should stop ('cancel', 'pause', 'shutdown', 'slice', 'throttle'), or
        None."""
        run = self._run
        if run is None:
            return None
        run.watched = True  # stop requests in the store are polled for it from now on
        if run.stop is not None:
            return run.stop
        if run.halt.is_set():
            return "shutdown"
        if time.monotonic() >= self._slice_end:
            return "slice"
        if self._throttle is not None and self.throttled() is not None:
            return "throttle"
        return None

    def throttled(self) -> float | None:
        """The seconds to wait when the type's `throttle_on` says so (asked at most once a
        second): True means `THROTTLE_DELAY`, a positive number that many seconds."""
        if self._throttled is not None or self._throttle is None:
            return self._throttled
        now = time.monotonic()
        if now - self._throttle_at < THROTTLE_EVERY:
            return None
        self._throttle_at = now
        said = self._throttle()
        if said is True or (said and not isinstance(said, (int, float, timedelta))):
            self._throttled = THROTTLE_DELAY
        elif isinstance(said, timedelta) and said.total_seconds() > 0:
            self._throttled = said.total_seconds()
        elif isinstance(said, (int, float)) and not isinstance(said, bool) and said > 0:
            self._throttled = float(said)
        return self._throttled

    def snooze(self, seconds: float | timedelta) -> None:
        """End this run now and run the job again after `seconds`, without using an attempt
        or counting a failure. It does not return (it raises a BaseException that the worker
        catches; don't catch it). An iteration job keeps its last yielded cursor."""
        if isinstance(seconds, timedelta):
            seconds = seconds.total_seconds()
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, (int, float))
            or not math.isfinite(seconds)
            or seconds < 0
        ):
            raise ConfigurationError(
                f"snooze() takes a non-negative number of seconds, got {seconds!r}"
            )
        raise Snooze(float(seconds))

    # --- completing in a transaction ----------------------------------------------------
    @property
    def completed(self) -> bool:
        """Whether `complete` was called in this run (its transaction may have rolled back)."""
        return self._done

    def complete(self, tx: Store, result: Any = None) -> None:
        """Complete this job inside the store transaction `tx` with a JSON `result`: it is
        completed when `tx` commits, together with everything else done in `tx`, and the
        worker does not acknowledge it again when the job's function returns (whatever the
        function returns is then not stored). A job whose lease was lost (rescued and claimed
        again, or completed already) raises StoreError, so that the block rolls back."""
        if not isinstance(tx, Store) or not tx.in_transaction:
            raise ConfigurationError(
                f"complete() takes a store transaction, got {type(tx).__name__}: "
                "`with app.transaction() as tx: offload.current_job().complete(tx)`"
            )
        store = self.app.store
        if tx.engine != store.engine or tx.url != store.url:
            raise ConfigurationError(
                f"job {self.id} runs on the store at {mask_url(store.url)!r}; complete it in a "
                f"transaction of that store, not of {mask_url(tx.url)!r}"
            )
        value = check_json(result, f"the result of {self.kind}()", path="result")
        value = seal_result(self.kind, value, self._job.meta)  # an encrypted job's
        ack = tx.job_complete_many([Completion(self.id, self.lease_token, value)])
        if not ack.applied:
            raise StoreError(
                f"job {self.id} ({self.kind}) cannot be completed: its lease was lost (it was "
                "rescued and may run elsewhere, or it is finished already); the transaction "
                "must roll back"
            )
        self._done = True

    # --- workflows (docs/workflows.md) -------------------------------------------------
    @property
    def workflow_id(self) -> int | None:
        """The workflow this job is a step of, or None."""
        mark = step_of(self.meta)
        return None if mark is None else mark[0]

    @property
    def step(self) -> str | None:
        """The name of the workflow step this job runs, or None."""
        mark = step_of(self.meta)
        return None if mark is None else mark[1]

    def results(self) -> dict[str, Any]:
        """The results of the steps this workflow step depends on, by step name (the ones
        that completed: an `on_failure` callback sees those of the steps that did)."""
        mark = step_of(self.meta)
        if mark is None:
            raise ConfigurationError(
                f"job {self.id} ({self.kind}) is no workflow step: results() reads the results "
                "of the steps a step depends on (app.chain, app.group, app.workflow, app.saga)"
            )
        return self.app.store.workflow_results(*mark)

    async def complete_async(self, tx: Store, result: Any = None) -> None:
        """`complete` for async code (an async job in `app.transaction_async()`), on the
        app's bridge threads."""
        await self.app.bridge(self.complete, tx, result)


def current_job() -> JobContext:
    """The job running in this thread or task (`offload.current_job()` in a job's code);
    ConfigurationError outside a running job."""
    cell = CURRENT.get()
    if cell is None:
        raise ConfigurationError(
            "offload.current_job() is only available while a job runs (in the job's function, "
            "on a worker or in offload.testing's drain or inline mode)"
        )
    ctx: JobContext | None = cell[2]
    if ctx is None:
        ctx = cell[2] = JobContext(cell[0], cell[1], cell[3])
    return ctx


def cell(app: Offload, job: ClaimedJob, run: Run | None = None) -> list[Any]:
    """The cell the executor sets in `CURRENT` for one run of `job` (its last place: the
    job's root id, once read)."""
    return [app, job, None, run, None]


def causes(app: Offload) -> tuple[int, int] | None:
    """(parent id, root id) for jobs enqueued here: the job running in this thread or task and
    the first job of its chain of causes (its own root, or itself); None outside a job."""
    running = CURRENT.get()
    if running is None or running[0] is not app:
        return None
    job_id = running[1].id
    root = running[4] if len(running) > 4 else None
    if root is None:
        record = app.store.job_get(job_id)
        root = (record.root_id if record is not None else None) or job_id
        if len(running) > 4:
            running[4] = root
        else:  # the worker's cell, made on its hot path, has no place for it yet
            running.append(root)
    return job_id, int(root)


def completed(run: list[Any]) -> JobContext | None:
    """The context of a run whose job called `complete` (its transaction may have rolled
    back), else None."""
    ctx: JobContext | None = run[2]
    return ctx if ctx is not None and ctx.completed else None


def settled(ctx: JobContext) -> bool:
    """Whether a job that called `complete` needs no acknowledgement from its worker: its
    completion committed, or its lease is gone anyway (an ack would be stale). False when the
    completion rolled back and the job still runs under this lease: the worker acknowledges
    its outcome as usual."""
    record = ctx.app.store.job_get(ctx.id)
    return record is None or record.state != "running" or record.lease_token != ctx.lease_token
