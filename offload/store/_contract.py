"""The storage contract: job-state operations every engine implements.

The seam speaks in operations on jobs (insert, claim, complete, fail, rescue ...), never in raw
SQL, so the worker, the maintenance duties and the CLI run unchanged on every engine. Times are
float seconds since the epoch, taken from the store's own clock.

Every operation runs on the executor it is called on: the store itself (each operation its own
transaction, on a pooled connection), a store transaction (`with store.transaction() as tx:`,
every operation on `tx` commits or rolls back together), or a caller's own connection
(`store.bind(conn)`: the operations join the caller's transaction, which the caller commits).
An executor is the same engine bound to one connection, so every operation works on all three.
The operations are grouped in families (jobs, maintenance, admin here; dispatch, policy and
totals in their modules), and each engine implements each family in a module of its own.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from offload._errors import ConfigurationError
from offload._redact import mask_url
from offload.dispatch._limits import LimitSpec
from offload.store._alerts import AlertOps
from offload.store._bulk import BulkOps
from offload.store._dispatch import DispatchOps
from offload.store._events import EventOps
from offload.store._pauses import PauseOps
from offload.store._policy import JobPolicy, PolicyOps
from offload.store._runtime import RunTimeOps
from offload.store._sealed import SealedOps
from offload.store._totals import TotalsOps
from offload.store._versions import VersionOps
from offload.store._workflows import WorkflowOps


@dataclass(slots=True)
class NewJob:
    """A job to insert. It runs at `scheduled_at` (epoch seconds) when given, else `delay`
    seconds after the store's clock says now (0: available at once).

    Treat it as immutable (change one with `dataclasses.replace`). It is not declared frozen
    because one is built per enqueued job: a frozen dataclass's `__init__` sets each of its 21
    fields through `object.__setattr__`, 2.3 us of the ~10 us a bulk enqueue may spend per job.
    """

    kind: str
    queue: str
    args: dict[str, Any]
    priority: int = 0
    max_attempts: int = 20
    delivery: str = "at_least_once"
    timeout: float | None = None
    scheduled_at: float | None = None
    delay: float = 0.0
    unique_key: str | None = None
    result_ttl: float = 86400.0
    meta: dict[str, Any] = field(default_factory=dict)
    tenant: str | None = None
    policy: JobPolicy | None = None  # expiry, uniqueness, shed at enqueue (store/_policy.py)
    # Dispatch (offload/dispatch/): the job's SLO in seconds, its stride in its flow's virtual
    # time (cost / weights), and the limit key it counts against with that key's declaration.
    slo: float | None = None
    stride: float = 1.0
    limit_key: str | None = None
    limit: LimitSpec | None = None
    # Virtual time added to the job's start tag, not to its flow's (dispatch/_ordering.py:
    # OVERRUN_PENALTY for a kind that keeps overrunning its max_run_time).
    penalty: float = 0.0
    # `args` as the compact JSON text the store keeps, when the producer made it already (at
    # enqueue, to check the size): the engines store it as it is instead of encoding again.
    args_json: str | None = None
    version: int = 1  # the version of its arguments (store/_versions.py)
    # Correlation: the job that was running where this one was enqueued, and the first job of
    # that chain of causes (docs/workflows.md).
    parent_id: int | None = None
    root_id: int | None = None


@dataclass(frozen=True, slots=True)
class Inserted:
    """The outcome of one insert: the job id and whether it existed already (unique key)."""

    id: int
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class Undecodable:
    """A stored field that cannot be decoded: what is wrong with it (`error`, naming the field
    and why) and the start of what the store holds (`raw`, bounded), for readers to show."""

    error: str
    raw: str


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One job row as the store holds it. A field that cannot be decoded (store/_codec.py)
    holds its empty value (`{}`, `[]` or None) and is named in `undecodable`; every other
    field reads normally."""

    id: int
    kind: str
    queue: str
    args: dict[str, Any]
    meta: dict[str, Any]
    tenant: str | None
    state: str
    priority: int
    attempt: int
    max_attempts: int
    crashes: int
    delivery: str
    timeout: float | None
    errors: list[dict[str, Any]]
    scheduled_at: float
    unique_key: str | None
    lease_owner: str | None
    lease_token: int | None
    lease_expires_at: float | None
    result: Any
    result_ttl: float
    inserted_at: float
    attempted_at: float | None
    finished_at: float | None
    expires_at: float | None = None  # shed instead of run once past this (store/_policy.py)
    order_key: float = 0.0  # its place in its lane (offload/dispatch/_ordering.py)
    deadline: float | None = None  # scheduled_at + slo, when its type has an SLO
    limit_key: str | None = None
    undecodable: dict[str, Undecodable] = field(default_factory=dict)  # field name -> why
    # Long jobs (docs/long-jobs.md): an iteration job's stored cursor, its progress (done,
    # total, estimated finish by the store's clock) and a stop request ('cancel', 'pause').
    cursor: Any = None
    progress_done: float | None = None
    progress_total: float | None = None
    progress_eta: float | None = None
    stop_request: str | None = None
    version: int = 1  # the version of its arguments (store/_versions.py)
    # Correlation (docs/workflows.md): the job running where this one was enqueued, and the
    # first job of that chain of causes.
    parent_id: int | None = None
    root_id: int | None = None


@dataclass(frozen=True, slots=True)
class ClaimParams:
    """Which queues to claim from, how many jobs, for whom and for how long.

    `start` says how many of the jobs go straight into free slots (the first `start` in claim
    order). Of those, the claim records the start of the at-most-once ones, which may not run
    twice (isolated ones excepted: they record it themselves before they begin). The others are
    held unstarted until `job_ack_claim` records their start, which a worker does once they
    have begun. A lost worker is charged a crash only for jobs recorded as started (see
    `job_rescue_expired`). None: the claim records every job's start (a claimer that runs what
    it takes, and knows nothing of this).
    `skip_kinds`: job types not to claim (paused ones, store/_pauses.py); when empty, as it is
    while no kind is paused, the claim runs its usual statements.
    """

    queues: Sequence[str]
    limit: int
    worker_id: str
    lease_seconds: float
    start: int | None = None
    skip_kinds: Sequence[str] = ()


@dataclass(slots=True)
class ClaimedJob:
    """What a worker needs to run one claimed job and to acknowledge it.

    Treat it as immutable. It is not declared frozen for the reason `NewJob` is not: one is
    built per claimed job, on the drain's hot path, and a frozen dataclass's `__init__` sets each
    of its 16 fields through `object.__setattr__`, several times the cost of the plain one.
    """

    id: int
    kind: str
    queue: str
    args: dict[str, Any]
    meta: dict[str, Any]
    attempt: int
    max_attempts: int
    delivery: str
    timeout: float | None
    lease_token: int
    result_ttl: float
    tenant: str | None = None  # for blackhole rules on `tenant`
    expired: bool = False  # past its expires_at by the store's clock at the claim: shed it
    limit_key: str | None = None  # the limit key it counts against (adaptive reports name it)
    started: bool = True  # the claim recorded its start (ClaimParams.start); else it is held
    isolated: bool = False  # held by a lost worker once: it must run alone in its process
    version: int = 1  # the version of its arguments: older ones are upgraded before the run


@dataclass(frozen=True, slots=True)
class Lease:
    """A job id and the lease token its claim carried (the fencing token)."""

    id: int
    token: int


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where a running job stands: its cursor (an iteration job's last yield; left as stored
    when `has_cursor` is false), how much is done of how much (`total` None: unknown), and the
    seconds its worker expects it still needs (`remaining`, None: unknown). Written fenced by
    the lease token, so a run whose lease was lost changes nothing."""

    id: int
    token: int
    cursor: Any = None
    done: float | None = None
    total: float | None = None
    remaining: float | None = None
    has_cursor: bool = True


@dataclass(frozen=True, slots=True)
class PutBack:
    """A running job stopped early and given back: its checkpoint is stored, its attempt given
    back, its stop request cleared, and it runs again after `delay` seconds (0: available at
    once; later: scheduled)."""

    checkpoint: Checkpoint
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class IterationState:
    """What a run of an iteration job resumes from: the stored cursor and progress, and the
    stop request the job's row holds."""

    cursor: Any = None
    done: float | None = None
    total: float | None = None
    stop_request: str | None = None


@dataclass(frozen=True, slots=True)
class Completion:
    """A successful run: the job is completed with this JSON result."""

    id: int
    token: int
    result: Any = None
    # Whether the job is a workflow's step (offload/store/_workflows.py): None when the caller
    # does not know, and the engine looks it up; a worker knows it from the job's meta.
    step: bool | None = None


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed attempt. `retry_in` None makes the job dead; otherwise it retries after it.
    `throttled` gives the attempt back (the job's attempt number goes back by one, as for a
    release) and records the error entry with the kind `throttled`: the downstream pushed
    back, the job did nothing wrong (offload/outcome.py decides when)."""

    id: int
    token: int
    error: str
    traceback: str = ""
    retry_in: float | None = None
    throttled: bool = False
    step: bool | None = None  # a workflow's step? as `Completion.step`


@dataclass(frozen=True, slots=True)
class AckResult:
    """How many acknowledgements changed a job, and how many were stale (fenced off)."""

    applied: int
    stale: int


@dataclass(frozen=True, slots=True)
class AckClaim:
    """What `job_ack_claim` did: the completions and failures applied, the jobs claimed, and
    the jobs whose start could not be recorded because their lease was lost."""

    completed: AckResult
    failed: AckResult
    claimed: list[ClaimedJob]
    not_started: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RescueResult:
    """Jobs whose lease expired: put back to run again, or made dead. `uncharged` counts the
    jobs among `requeued` whose start was never recorded: put back without a crash counted."""

    requeued: int
    dead: int
    uncharged: int = 0


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Filters for listing jobs; None means any."""

    states: Sequence[str] | None = None
    queue: str | None = None
    kind: str | None = None
    limit: int = 50
    before_id: int | None = None
    tenants: Sequence[str] | None = None  # jobs of these tenants only (none without a tenant)


@dataclass(frozen=True, slots=True)
class QueueCount:
    """How many jobs one queue holds in one state."""

    queue: str
    state: str
    count: int


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A worker process as it last reported itself."""

    id: str
    host: str
    pid: int
    queues: list[str]
    started_at: float
    seen_at: float
    running: int
    owner: str | None = None  # the API token that registered it over HTTP; None otherwise


@dataclass(frozen=True, slots=True)
class CronTick:
    """A cron tick to fire once: the schedule name, the tick time and the job it enqueues."""

    name: str
    tick: float
    job: NewJob


class Listener(abc.ABC):
    """Wakes a worker when jobs may have become available."""

    @abc.abstractmethod
    def wait(self, timeout: float) -> bool:
        """Block up to `timeout` seconds; True when something may have changed."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the listener's resources."""


class JobOps(abc.ABC):
    """The jobs family: insert, claim and acknowledge, the worker's side of a job's life."""

    engine: str

    @abc.abstractmethod
    def job_insert_many(self, jobs: Sequence[NewJob], conn: Any = None) -> list[Inserted]:
        """Insert jobs in one transaction: this executor's, or the caller's when `conn` is
        given (the same as `self.bind(conn).job_insert_many(jobs)`)."""

    async def job_insert_many_async(self, jobs: Sequence[NewJob], conn: Any) -> list[Inserted]:
        """`job_insert_many` in the transaction of a caller's async connection, through the
        async driver (the one exception to running the sync store on a thread). Engines
        without an async driver refuse it."""
        raise ConfigurationError(
            f"the {self.engine} store cannot enqueue on an async connection "
            f"({type(conn).__module__}.{type(conn).__name__}); enqueue on a connection of its "
            "own driver with the sync API, or use a PostgreSQL store with a psycopg "
            "AsyncConnection"
        )

    @abc.abstractmethod
    def job_claim(self, params: ClaimParams) -> list[ClaimedJob]:
        """Claim up to `limit` available jobs in priority order, leasing them to a worker."""

    @abc.abstractmethod
    def job_complete_many(self, done: Sequence[Completion]) -> AckResult:
        """Complete running jobs whose lease token still matches."""

    @abc.abstractmethod
    def job_fail_many(self, failed: Sequence[Failure]) -> AckResult:
        """Record failed attempts of running jobs whose lease token still matches."""

    def job_ack_claim(
        self,
        done: Sequence[Completion],
        failed: Sequence[Failure],
        claim: ClaimParams | None,
        durable: bool = True,
        started: Sequence[Lease] = (),
    ) -> AckClaim:
        """A worker's cycle: complete and fail jobs as `job_complete_many` and `job_fail_many`
        do, record the start of held jobs as `job_start_many` does, then claim as `job_claim`
        does (nothing when `claim` is None). Engines run it in one transaction, so that a cycle
        costs one commit. `durable=False` says that every job acknowledged or started here and
        every job the claim may take is at-least-once: the engine may then commit without
        waiting for its log to reach the disk (a crash of the database may lose the cycle: its
        jobs run again, which at-least-once allows). This default runs the operations one after
        the other."""
        a = self.job_complete_many(done)
        b = self.job_fail_many(failed)
        lost = self.job_start_many(started)
        return AckClaim(a, b, [] if claim is None else self.job_claim(claim), lost)

    @abc.abstractmethod
    def job_heartbeat(self, leases: Sequence[Lease], lease_seconds: float) -> list[int]:
        """Extend leases; return the ids whose lease was lost (stale token or not running)."""

    @abc.abstractmethod
    def job_start_many(self, leases: Sequence[Lease]) -> list[int]:
        """Record that held jobs (claimed unstarted, see `ClaimParams.start`) have started;
        return the ids whose lease was lost (stale token or not running)."""

    @abc.abstractmethod
    def job_release_many(self, leases: Sequence[Lease]) -> int:
        """Put claimed jobs back to available without counting an attempt (shutdown)."""

    # --- long jobs (docs/long-jobs.md) ----------------------------------------------------
    @abc.abstractmethod
    def job_iteration_state(self, lease: Lease) -> IterationState | None:
        """The stored cursor, progress and stop request of a running job held under `lease`;
        None when its lease was lost (read once when an iteration job's run begins)."""

    @abc.abstractmethod
    def job_checkpoint_many(self, checkpoints: Sequence[Checkpoint]) -> dict[int, str | None]:
        """Store running jobs' cursors and progress, fenced by their lease tokens; the stop
        request of each job written (ids whose lease was lost are absent)."""

    @abc.abstractmethod
    def job_put_back_many(self, jobs: Sequence[PutBack]) -> AckResult:
        """Give running jobs back (stopped early: shutdown, time slice over, pause, throttle,
        snooze) with their checkpoint stored, their attempt given back and their stop request
        cleared: available at once, or scheduled after their delay."""

    @abc.abstractmethod
    def job_cancel_running_many(self, checkpoints: Sequence[Checkpoint]) -> AckResult:
        """End running jobs `cancelled` (their cancel request honoured), their checkpoint
        stored and their stop request cleared, fenced by their lease tokens."""

    @abc.abstractmethod
    def job_stop_requests(self, leases: Sequence[Lease]) -> dict[int, str]:
        """The stop requests of running jobs held under these leases (jobs without one, or
        whose lease was lost, are absent): one read by primary key."""

    @abc.abstractmethod
    def job_request_stop(self, job_id: int, request: str) -> bool:
        """Ask a running job to stop at its next yield (`request`: 'cancel' or 'pause');
        False when it is not running."""


class MaintenanceOps(abc.ABC):
    """The maintenance family: the leader's duties (rescue, promote, prune, cron), leadership
    and the registry of workers."""

    @abc.abstractmethod
    def job_rescue_expired(self, max_crashes: int) -> RescueResult:
        """Rescue running jobs whose lease expired, whose worker was lost. A job recorded as
        started is charged a crash (an error entry of kind "crash") and runs isolated from then
        on: at-least-once, it goes back to available, or dead once it has crashed its worker
        `max_crashes` times; at-most-once, it is dead ("abandoned"), since it may have had
        effects. A job held but never recorded as started goes back to available uncharged;
        an at-least-once one runs isolated from then on too, since it may have started in the
        moments before its worker's last cycle. Either way the attempt is given back."""

    @abc.abstractmethod
    def job_promote_due(self) -> int:
        """Make scheduled and retryable jobs whose time has come available."""

    @abc.abstractmethod
    def job_prune(self, dead_older_than: float) -> int:
        """Delete completed jobs past their result expiry and final failures older than
        `dead_older_than` seconds."""

    @abc.abstractmethod
    def leader_acquire(self, name: str, owner: str, ttl: float) -> bool:
        """Take or renew a named leadership for `ttl` seconds; True when `owner` holds it."""

    @abc.abstractmethod
    def leader_release(self, name: str, owner: str) -> None:
        """Give up a leadership if `owner` holds it."""

    @abc.abstractmethod
    def worker_beat(self, info: WorkerInfo) -> None:
        """Register a worker or refresh its record."""

    @abc.abstractmethod
    def worker_owner(self, worker_id: str) -> str | None:
        """Who registered this worker record (`WorkerInfo.owner`: an API token's name), or
        None when nobody did or there is no record."""

    @abc.abstractmethod
    def worker_remove(self, worker_id: str) -> None:
        """Forget a worker that stopped."""

    @abc.abstractmethod
    def worker_list(self, seen_within: float) -> list[WorkerInfo]:
        """Workers seen within the last `seen_within` seconds."""

    @abc.abstractmethod
    def cron_last_tick(self, name: str) -> float | None:
        """The last tick fired for a cron schedule, or None."""

    @abc.abstractmethod
    def cron_fire(self, tick: CronTick) -> bool:
        """Record the tick and insert its job in one transaction, once per (name, tick)."""


class AdminOps(abc.ABC):
    """The admin family: read jobs, retry or cancel one, count them, and the named counters."""

    @abc.abstractmethod
    def job_get(self, job_id: int) -> JobRecord | None:
        """One job, or None."""

    @abc.abstractmethod
    def job_list(self, flt: JobFilter) -> list[JobRecord]:
        """Jobs matching a filter, newest first."""

    @abc.abstractmethod
    def job_retry(self, job_id: int) -> bool:
        """Make a dead, cancelled, shed, completed, retryable or scheduled job available now."""

    @abc.abstractmethod
    def job_cancel(self, job_id: int) -> bool:
        """Cancel a job that is not running and not final."""

    @abc.abstractmethod
    def job_counts(self) -> list[QueueCount]:
        """Jobs per queue and state."""

    @abc.abstractmethod
    def job_finished_since(self, since: float) -> dict[str, int]:
        """How many jobs reached completed, dead or retryable since a time, by state: whole
        10-second spans from counts the store keeps as jobs end (kept eight days, and still
        counted after the jobs are pruned or retried), the span that `since` cuts from the rows;
        so the cost does not grow with the jobs."""

    def job_finished_since_each(self, sinces: Sequence[float]) -> list[dict[str, int]]:
        """`job_finished_since` for each of several times, in order (an engine may read them
        in one statement: the overview's chart asks for 30 at once)."""
        return [self.job_finished_since(since) for since in sinces]

    @abc.abstractmethod
    def counter_add(self, name: str, amount: int) -> None:
        """Add to a named counter kept in the store (stale acks, rescues ...)."""

    @abc.abstractmethod
    def counters(self) -> dict[str, int]:
        """All named counters."""


class Store(
    JobOps,
    MaintenanceOps,
    AdminOps,
    BulkOps,
    PolicyOps,
    PauseOps,
    DispatchOps,
    TotalsOps,
    RunTimeOps,
    EventOps,
    VersionOps,
    AlertOps,
    WorkflowOps,
    SealedOps,
    abc.ABC,
):
    """The storage contract. Engines subclass it; nothing above it sees SQL.

    A Store is also an executor: the store itself runs each operation in a transaction of its
    own; `transaction()` and `bind()` give executors (the same engine bound to one connection)
    on which every operation joins one transaction.
    """

    url: str
    engine: str
    in_transaction: bool = False  # True on an executor bound to one open transaction

    # --- lifecycle ---------------------------------------------------------------------
    @abc.abstractmethod
    def migrate(self) -> list[int]:
        """Apply pending schema migrations; return the versions applied now."""

    @abc.abstractmethod
    def schema_version(self) -> int:
        """The highest migration applied to this database (0 when none)."""

    def exists(self) -> bool:
        """Whether this store's database is there, asked without creating it (a SQLite file
        is made by its first connection), so that a command that only reads can say that no
        store is there instead of making an empty one. A database server always has one; its
        offload tables may still be missing (`schema_version`)."""
        return True

    @abc.abstractmethod
    def close(self) -> None:
        """Close every connection this store holds."""

    @abc.abstractmethod
    def now(self) -> float:
        """The store's clock, seconds since the epoch."""

    @abc.abstractmethod
    def listener(self, queues: Sequence[str]) -> Listener:
        """A wake-up source for workers of these queues."""

    # --- executors ---------------------------------------------------------------------
    @abc.abstractmethod
    def transaction(self) -> contextlib.AbstractContextManager[Store]:
        """Open one store transaction and yield an executor on it: every operation called on
        the executor (a Store with the same interface) runs in it; the transaction commits
        when the block ends and rolls back when it raises. Wake-ups of idle workers happen
        after the commit. On an executor already in a transaction, yields that executor
        (the block joins the open transaction, which its opener commits)."""

    @abc.abstractmethod
    def bind(self, conn: Any) -> Store:
        """An executor on a caller's own open connection or transaction (a sqlite3 or psycopg
        connection, a SQLAlchemy Connection or Session on either): every operation runs in the
        caller's transaction, and the caller commits (no wake-up is rung: idle workers find
        the jobs at their next poll). An executor of this store already in a transaction is
        returned as it is. A connection of another engine's driver, or another store's
        executor, raises ConfigurationError naming both."""


def joined(store: Store, conn: Any) -> Store | None:
    """For `bind`: `conn` itself when it is an executor of `store`'s database in a transaction;
    None when `conn` is no Store (a driver connection, for the engine to unwrap). A Store that is
    not in a transaction, or belongs to another engine or database, raises ConfigurationError."""
    if not isinstance(conn, Store):
        return None
    if conn.engine != store.engine or conn.url != store.url:
        raise ConfigurationError(
            f"a transaction of the {conn.engine} store at {mask_url(conn.url)!r} cannot be used "
            f"with the {store.engine} store at {mask_url(store.url)!r}: open it with this "
            "store's transaction()"
        )
    if not conn.in_transaction:
        raise ConfigurationError(
            "a store is not a transaction: pass the executor that `with app.transaction() as "
            "tx:` (or `store.transaction()`) yields, or a connection of your own"
        )
    return conn
