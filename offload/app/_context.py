"""The running job's context: `offload.current_job()` inside a job's code.

The executor sets it around each run (sync code on its thread, async code in its task), so
`offload.testing`'s drain and inline mode, which run jobs on the real executor, set it too. Its
`complete(tx, result)` completes the running job inside a store transaction, fenced by the
lease token like any acknowledgement, so that the job's completion and the jobs it enqueues in
that transaction commit together (or not at all). A job that completed itself is not
acknowledged again when its function returns.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from offload._errors import ConfigurationError, StoreError
from offload._redact import mask_url
from offload.jobs._payload import check_json
from offload.store._contract import ClaimedJob, Completion, Store

if TYPE_CHECKING:
    from offload.app._offload import Offload

# The running job as a cell [app, claimed job, its JobContext once asked for]: the executor sets
# one per run, and the context object is only made when the job's code asks for it.
CURRENT: ContextVar[list[Any] | None] = ContextVar("offload_current_job", default=None)


class JobContext:
    """The job being run here: its id, type, queue, attempt (1 on the first run) and lease
    token, and `complete(tx, result)` to complete it inside a store transaction."""

    __slots__ = ("app", "id", "kind", "queue", "attempt", "max_attempts", "lease_token", "_done")

    def __init__(self, app: Offload, job: ClaimedJob) -> None:
        self.app = app
        self.id = job.id
        self.kind = job.kind
        self.queue = job.queue
        self.attempt = job.attempt
        self.max_attempts = job.max_attempts
        self.lease_token = job.lease_token
        self._done = False

    def __repr__(self) -> str:
        return f"<JobContext {self.kind} id={self.id} attempt={self.attempt}>"

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
        ack = tx.job_complete_many([Completion(self.id, self.lease_token, value)])
        if not ack.applied:
            raise StoreError(
                f"job {self.id} ({self.kind}) cannot be completed: its lease was lost (it was "
                "rescued and may run elsewhere, or it is finished already); the transaction "
                "must roll back"
            )
        self._done = True

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
        ctx = cell[2] = JobContext(cell[0], cell[1])
    return ctx


def cell(app: Offload, job: ClaimedJob) -> list[Any]:
    """The cell the executor sets in `CURRENT` for one run of `job`."""
    return [app, job, None]


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
