"""The `Offload` application: the registry of job types, its configuration and enqueue."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import functools
import inspect
import logging
import threading
from collections.abc import (
    AsyncIterator,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ParamSpec, Protocol, TypeVar, overload

from offload._errors import ConfigurationError, UnknownJobError
from offload._redact import mask_url
from offload.app._admission import Admission, RuleBook
from offload.app._alerts import AlertRule, Alerts, checked_rule
from offload.app._config import Config, resolve_store_url
from offload.app._context import CURRENT, causes
from offload.app._cron import validate_cron
from offload.app._events import declare_consumer, declare_subscription, declare_topic
from offload.app._handle import Job
from offload.app._overruns import Overruns
from offload.app._scaling import Scaling
from offload.app._tally import Tally
from offload.app._webhooks import Webhooks
from offload.app._workflows import Chain, Group, Saga, Workflow, Workflows
from offload.dispatch._shedding import queue_bounds
from offload.events import Consumer, Topic
from offload.jobs._long import run_time
from offload.jobs._step import Step
from offload.jobs._type import (
    JobCall,
    JobOptions,
    JobType,
    PreparedJob,
    build_options,
    check_kind_name,
    seconds,
)
from offload.jobs._versions import DEFAULT_GRACE
from offload.store import Store, open_store
from offload.store._contract import NewJob, joined
from offload.store._outbox import Staged
from offload.store._versions import version_rows
from offload.telemetry import EnqueuedJob, Hooks, JobEvent

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class _Runs(Protocol[P, R_co]):
    """A job class: instances have `run(...)`, the job's code."""

    def run(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...


class _Declare(Protocol):
    """What `app.job(...)` with options gives: a decorator typed as `app.job` is."""

    @overload
    def __call__(self, target: type[_Runs[P, R]]) -> JobType[P, R]: ...

    @overload
    def __call__(
        self, target: Callable[P, Iterator[Any] | AsyncIterator[Any]]
    ) -> JobType[P, Any]: ...

    @overload
    def __call__(self, target: Callable[P, Coroutine[Any, Any, R]]) -> JobType[P, R]: ...

    @overload
    def __call__(self, target: Callable[P, R]) -> JobType[P, R]: ...


log = logging.getLogger("offload")
# The app transaction open in this thread or task: its app, executor and the jobs enqueued in
# it (handed to `after_enqueue` once it commits).
_OPEN: contextvars.ContextVar[tuple[Offload, Store, list[Job]] | None] = contextvars.ContextVar(
    "offload_transaction", default=None
)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A cron schedule: enqueue `job` with `args` at every tick of `cron` (UTC)."""

    name: str
    cron: str
    job: str
    args: dict[str, Any] = field(default_factory=dict)


class Offload:
    """A background-job application bound to one store.

    `Offload("sqlite:///jobs.db")`, `Offload("postgresql://user@host/db")`, or `Offload()` for
    `$OFFLOAD_URL`, else `./offload.db`. A URL given here wins over `$OFFLOAD_URL` in every
    process (a warning says so when they differ). Declare job types with `@app.job()`; nothing
    connects to the store until it is first used.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        lease_seconds: float = 30.0,
        heartbeat_interval: float | None = None,
        max_crashes: int = 3,
        max_payload_bytes: int = 1_000_000,
        maintenance_interval: float = 1.0,
        dead_retention: float = 7 * 86400.0,
        auto_migrate: bool = True,
        max_backlog: Mapping[str, int] | None = None,
        max_run_time: float | timedelta | None = None,
        version_grace: float | timedelta = DEFAULT_GRACE,
    ) -> None:
        store_url, source = resolve_store_url(url)
        self.config = Config(
            url=store_url,
            url_source=source,
            lease_seconds=lease_seconds,
            heartbeat_interval=heartbeat_interval
            if heartbeat_interval is not None
            else lease_seconds / 3,
            max_crashes=max_crashes,
            max_payload_bytes=max_payload_bytes,
            maintenance_interval=maintenance_interval,
            dead_retention=dead_retention,
            auto_migrate=auto_migrate,
            max_run_time=run_time(max_run_time, "max_run_time"),
            version_grace=seconds(version_grace, "version_grace") or 0.0,
        ).validate()
        self.jobs: dict[str, JobType] = {}
        self.schedules: dict[str, Schedule] = {}
        self.topics: dict[str, Topic] = {}  # docs/events.md
        self.consumers: dict[tuple[str, str], Consumer] = {}  # by (topic, group)
        self._store: Store | None = None
        self._lock = threading.Lock()
        self._bridge: ThreadPoolExecutor | None = None
        self.after_enqueue: Callable[[list[Job]], None] | None = None
        # Load shedding and blackhole rules (offload/app/_admission.py): max_backlog bounds queues.
        self.admission = Admission(self, queue_bounds(max_backlog))
        self.rules = RuleBook(self)
        # Failed and retried attempts for the store's totals, flushed in batches (_tally.py).
        self.tally = Tally()
        # Kinds that keep overrunning max_run_time: their new jobs order last (_overruns.py).
        self.overruns = Overruns(self)
        # Signed webhooks of jobs' ends: secrets, allowed hosts, backoff (_webhooks.py).
        self.webhooks = Webhooks()
        # Middleware and lifecycle callbacks (docs/hooks.md, offload/telemetry/_hooks.py).
        self.hooks = Hooks()
        # Alert rules and the target lag of scaling signals (_alerts.py, _scaling.py).
        self.alerts = Alerts(self)
        self.scaling = Scaling()
        # Chains, groups, graphs and sagas (_workflows.py, docs/workflows.md).
        self.workflows = Workflows(self)

    def __repr__(self) -> str:
        return f"<Offload {mask_url(self.config.url)} jobs={len(self.jobs)}>"

    # --- the store --------------------------------------------------------------------
    @property
    def store(self) -> Store:
        """The store, opened (and migrated, unless auto_migrate=False) on first use. Inside
        `with app.transaction() as tx:` (in that thread or task) it is `tx`: whatever the app
        reads or writes there (admission's backlog counts, a handle's refresh) joins the
        transaction, instead of waiting for the lock it holds (SQLite)."""
        open_tx = _OPEN.get()
        if open_tx is not None and open_tx[0] is self:
            return open_tx[1]
        if self._store is None:
            with self._lock:
                if self._store is None:
                    store = open_store(self.config.url)
                    if self.config.auto_migrate:
                        store.migrate()
                    self._store = store
        return self._store

    def close(self) -> None:
        """Close the store's connections and the async bridge."""
        if self._store is not None:
            self.admission.flush()
            try:
                self.tally.flush(self._store)
            except Exception:
                log.debug("could not record the last failed attempts' totals", exc_info=True)
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
            if self._bridge is not None:
                self._bridge.shutdown(wait=False)
                self._bridge = None

    async def bridge(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking store call from async code on the app's bridge threads."""
        if self._bridge is None:
            with self._lock:
                if self._bridge is None:
                    self._bridge = ThreadPoolExecutor(8, thread_name_prefix="offload-bridge")
        loop = asyncio.get_running_loop()
        # In the caller's context: an open `transaction_async` is seen on the bridge thread.
        call = functools.partial(contextvars.copy_context().run, fn, *args)
        return await loop.run_in_executor(self._bridge, call)

    # --- transactions -----------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[Store]:
        """One store transaction: `with app.transaction() as tx:` yields an executor on which
        every store operation joins it, and on which `job.options(connection=tx).enqueue(...)`,
        `app.enqueue_many(..., connection=tx)` and `offload.current_job().complete(tx)` run.
        Everything commits when the block ends and rolls back when it raises. A block opened
        inside another one of this app (in the same thread or task) joins it."""
        open_tx = _OPEN.get()
        if open_tx is not None and open_tx[0] is self:
            yield open_tx[1]
            return
        enqueued: list[Job] = []
        with self.store.transaction() as tx:
            token = _OPEN.set((self, tx, enqueued))
            try:
                yield tx
            finally:
                _OPEN.reset(token)
        if enqueued and self.after_enqueue is not None:  # committed: testing's inline mode
            self.after_enqueue(enqueued)

    @contextlib.asynccontextmanager
    async def transaction_async(self) -> AsyncIterator[Store]:
        """`transaction` for async code: the transaction is opened, committed or rolled back
        on the app's bridge threads, and `tx` is used with the async API
        (`await job.options(connection=tx).enqueue_async(...)`) or through `app.bridge`."""
        open_tx = _OPEN.get()
        if open_tx is not None and open_tx[0] is self:
            yield open_tx[1]
            return
        store = self._store if self._store is not None else await self.bridge(lambda: self.store)
        opened = store.transaction()
        tx = await self.bridge(opened.__enter__)
        enqueued: list[Job] = []
        token = _OPEN.set((self, tx, enqueued))
        try:
            yield tx
        except BaseException as exc:
            _OPEN.reset(token)
            if not await self.bridge(opened.__exit__, type(exc), exc, exc.__traceback__):
                raise
            return
        _OPEN.reset(token)
        await self.bridge(opened.__exit__, None, None, None)
        if enqueued and self.after_enqueue is not None:
            await self.bridge(self.after_enqueue, enqueued)

    # --- declaring --------------------------------------------------------------------
    # The overloads of `job` (and of `_Declare`, what `job(...)` with options gives) type a job
    # type by its function: its parameters and its result, awaited for async functions;
    # generator (iteration) jobs and classes with `run()` take their parameters (docs/typing.md).
    @overload
    def job(self, target: type[_Runs[P, R]]) -> JobType[P, R]: ...

    @overload
    def job(self, target: Callable[P, Iterator[Any] | AsyncIterator[Any]]) -> JobType[P, Any]: ...

    @overload
    def job(self, target: Callable[P, Coroutine[Any, Any, R]]) -> JobType[P, R]: ...

    @overload
    def job(self, target: Callable[P, R]) -> JobType[P, R]: ...

    @overload
    def job(
        self,
        target: None = None,
        *,
        name: str | None = None,
        cron: str | None = None,
        **options: Any,
    ) -> _Declare: ...

    def job(
        self,
        target: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        cron: str | None = None,
        **options: Any,
    ) -> JobType | _Declare:
        """Declare a job type from a function (sync or async) or a class with `run()`.

        Options: queue, priority (higher runs first), max_attempts, backoff (seconds or a
        function of the attempt), timeout, delivery ('at_least_once' or 'at_most_once'),
        result_ttl; max_run_time (how long one run should take; the app's default when not
        given) and owner (the team that owns the job type), docs/run-time.md;
        `cron="*/5 * * * *"` also enqueues it at every tick. Load shedding and
        unique jobs (docs/scheduling.md): expires, critical, max_backlog, unique=Unique(...).
        Long jobs (docs/long-jobs.md): a generator function is an iteration job; options
        checkpoint_every, max_run_time, throttle_on. Argument versions for rolling deploys
        (docs/versions.md): version, upgrade ({N: function turning version N-1 arguments into
        version N}) and version_grace.
        """

        def declare(fn: Callable[..., Any]) -> JobType:
            job_name = name or getattr(fn, "__name__", None)
            if not job_name or not isinstance(job_name, str):
                raise ConfigurationError("a job needs a name: @app.job(name='...')")
            check_kind_name(job_name)
            if job_name in self.jobs:
                raise ConfigurationError(
                    f"a job named {job_name!r} is declared twice; give one a name=... of its own"
                )
            opts = build_options(JobOptions(), job_name, options)
            job_type = JobType(self, fn, job_name, opts, cron)
            if cron is not None:
                if job_type.signature.required:
                    raise ConfigurationError(
                        f"cron job {job_name!r} has required arguments "
                        f"{job_type.signature.required}; use app.schedule(...) to give them"
                    )
                self._add_schedule(Schedule(job_name, validate_cron(cron), job_name, {}))
            self.jobs[job_name] = job_type
            return job_type

        if target is not None:
            return declare(target)
        return declare  # type: ignore[return-value]  # `_Declare` types its overloads

    def schedule(
        self,
        name: str,
        cron: str,
        job: JobType | str,
        *args: Any,
        **kwargs: Any,
    ) -> Schedule:
        """Enqueue `job(*args, **kwargs)` at every tick of a cron expression (UTC).

        Five fields (minute hour day month weekday), or six with seconds last.
        """
        if not isinstance(name, str):
            raise ConfigurationError(f"a schedule's name must be text, got {name!r}")
        check_kind_name(name, "a schedule's name")
        job_type = self.job_type(job if isinstance(job, str) else job.name)
        arguments = job_type.signature.bind(args, kwargs)
        job_type.prepare_plain(arguments)  # size and text checks now, not at the first tick
        return self._add_schedule(Schedule(name, validate_cron(cron), job_type.name, arguments))

    def alert(
        self,
        name: str,
        condition: str,
        threshold: float,
        *,
        target: str | None = None,
        for_seconds: float | timedelta = 0.0,
        webhook: str | None = None,
    ) -> AlertRule:
        """Declare an alert: it fires when `condition` ('queue_depth', 'oldest_job_age',
        'slo_attainment', 'dead_per_hour', 'workers_alive', 'stuck_sagas') of `target` (a
        queue or job type; any when None) is beyond `threshold` for `for_seconds`, and resolves
        when it is back. The maintenance leader evaluates it; `webhook` receives its events
        (docs/alerts.md)."""
        rule = checked_rule(name, condition, threshold, target, for_seconds, webhook, "app")
        if rule.name in self.alerts.declared:
            raise ConfigurationError(f"an alert named {rule.name!r} is declared twice")
        return self.alerts.declare(rule)

    def _add_schedule(self, schedule: Schedule) -> Schedule:
        if schedule.name in self.schedules:
            raise ConfigurationError(f"a schedule named {schedule.name!r} is declared twice")
        self.schedules[schedule.name] = schedule
        return schedule

    # --- events (docs/events.md) --------------------------------------------------------
    def topic(
        self,
        name: str,
        partitions: int = 1,
        retention: float | timedelta | None = None,
        *,
        max_events: int | None = None,
        keep_unconsumed: bool = True,
    ) -> Topic:
        """Declare a topic: an append-only log of `partitions` in the store, whose events are
        kept for `retention` (and at most `max_events` per partition), then pruned by the
        leader; never before every consumer group has read them unless `keep_unconsumed` is
        False (those are counted)."""
        return declare_topic(self, name, partitions, retention, max_events, keep_unconsumed)

    def subscribe(
        self, topic: str | Topic, *, name: str, **options: Any
    ) -> Callable[[Callable[..., Any]], JobType]:
        """Declare a subscription: a job type, with every job option, that runs once per event
        published to `topic` (`def handle(event: offload.Event)`); its job is made in the
        publish's transaction."""
        return lambda fn: declare_subscription(self, topic, name, fn, options)

    def consumer(
        self, topic: str | Topic, *, group: str, batch: int = 100, **options: Any
    ) -> Callable[[Callable[..., Any]], Consumer]:
        """Declare a consumer group: `fn(events)` is called with up to `batch` events of one
        partition in offset order, the group's offset committed after each batch; one worker
        holds a partition at a time. Options: start ('earliest' or 'latest', for a new
        group), queue and the other job options of its partition jobs."""
        return lambda fn: declare_consumer(self, topic, group, fn, batch, options)

    def job_type(self, name: str) -> JobType:
        """The job type declared under `name`."""
        try:
            return self.jobs[name]
        except KeyError:
            known = ", ".join(sorted(self.jobs)) or "none"
            raise UnknownJobError(
                f"no job type named {name!r} in this application (declared: {known})"
            ) from None

    # --- hooks (docs/hooks.md) ---------------------------------------------------------
    def middleware(self, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """Register middleware around every job attempt (sync and async jobs): a generator
        function that takes the run (`offload.JobRun`) and yields once."""
        return self.hooks.add_middleware(fn)

    def enqueue_middleware(self, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """Register middleware around every enqueue: a generator function that takes the list
        of jobs being stored (`offload.EnqueuedJob`, their `meta` may be changed before the
        `yield`) and yields once."""
        return self.hooks.add_middleware(fn, enqueue=True)

    def on(self, event: str) -> Callable[[Callable[[JobEvent], None]], Callable[[JobEvent], None]]:
        """Register a callback on a lifecycle event (`offload.EVENTS`: enqueued, claimed,
        started, succeeded, failed, retried, dead, shed, stale_ack), called with a
        `JobEvent`."""

        def register(fn: Callable[[JobEvent], None]) -> Callable[[JobEvent], None]:
            return self.hooks.on(event, fn)

        return register

    def _hooked(self, news: Sequence[NewJob]) -> tuple[list[NewJob], list[EnqueuedJob], Any]:
        """Enter enqueue middleware: the jobs with the meta it set."""
        seen = [EnqueuedJob(n.kind, n.queue, n.tenant, dict(n.meta), n.args) for n in news]
        entered = self.hooks.enqueueing(seen)
        changed = [
            n if n.meta == e.meta else dataclasses.replace(n, meta=e.meta)
            for n, e in zip(news, seen, strict=True)
        ]
        return changed, seen, entered

    def _enqueued(self, seen: list[EnqueuedJob], entered: Any, handles: Sequence[Job]) -> None:
        """Leave enqueue middleware (also when storing failed: no ids, no `enqueued` events)."""
        for e, h in zip(seen, handles, strict=False):
            e.id = h.id
        self.hooks.enqueued(seen if handles else [], entered)

    # --- enqueueing -------------------------------------------------------------------
    def enqueue(self, name: str, *args: Any, **kwargs: Any) -> Job:
        """Enqueue a job type by name."""
        return self.job_type(name).enqueue(*args, **kwargs)

    async def enqueue_async(self, name: str, *args: Any, **kwargs: Any) -> Job:
        """`enqueue` for async code."""
        return await self.job_type(name).enqueue_async(*args, **kwargs)

    def call(self, name: str, **options: Any) -> JobCall:
        """A job type by name with per-call options, e.g. `app.call("x", delay=5).enqueue()`."""
        return self.job_type(name).options(**options)

    def enqueue_many(self, jobs: Iterable[PreparedJob], *, connection: Any = None) -> list[Job]:
        """Store many prepared jobs (`job_type.prepare(...)`) in one transaction: their own, or
        `connection`'s (a store transaction `tx` from `app.transaction()`, or a connection of
        the application's own, which its owner commits)."""
        prepared = self._checked(jobs)
        if not prepared:
            return []
        if connection is not None and _is_async(connection):
            raise ConfigurationError(
                f"{type(connection).__name__} is an async connection: enqueue on it with "
                "`await job.options(connection=...).enqueue_async(...)` or "
                "`await app.enqueue_many_async(..., connection=...)`"
            )
        return self.admit_and_store([p.new for p in prepared], connection=connection)

    def admit_and_store(self, jobs: Sequence[NewJob], *, connection: Any = None) -> list[Job]:
        """Store checked jobs in one transaction once admitted: the door every enqueue path
        goes through (Python, bulk, a caller's transaction, HTTP for declared and external
        kinds, the CLI, the outbox relay), so that backlog bounds (`OverloadedError`, nothing
        stored) and blackhole rules (stored `shed`) apply alike to all of them. Cron ticks are
        admitted by the same `Admission` inside the tick's own transaction."""
        if self.hooks.enqueue_middleware or self.hooks.wants("enqueued"):
            news, seen, entered = self._hooked(jobs)
            handles: list[Job] = []
            try:
                handles = self._admit_and_store(news, connection)
            finally:
                self._enqueued(seen, entered, handles)
            return handles
        return self._admit_and_store(jobs, connection)

    def _admit_and_store(self, jobs: Sequence[NewJob], connection: Any) -> list[Job]:
        news = self._caused(self.admission.admit(jobs))
        executor = None if connection is None else joined(self.store, connection)
        if executor is not None:  # a store transaction (`with app.transaction() as tx`)
            inserted = executor.job_insert_many(news)
        else:
            inserted = self.store.job_insert_many(news, conn=connection)
        handles = [Job(self, i.id, i.duplicate) for i in inserted]
        open_tx = _OPEN.get()
        if open_tx is not None and open_tx[0] is self:  # inside `with app.transaction()`
            if connection is None or connection is open_tx[1]:
                open_tx[2].extend(handles)  # committed with the block: seen then
        elif connection is None and self.after_enqueue is not None:
            self.after_enqueue(handles)
        return handles

    async def enqueue_many_async(
        self, jobs: Iterable[PreparedJob], *, connection: Any = None
    ) -> list[Job]:
        """`enqueue_many` for async code. On a caller's async connection (a psycopg
        `AsyncConnection`, or a SQLAlchemy `AsyncConnection`/`AsyncSession` on psycopg) the jobs
        are inserted through the async driver, in the caller's open transaction."""
        prepared = list(jobs)
        if connection is None or not _is_async(connection):
            return await self.bridge(
                functools.partial(self.enqueue_many, connection=connection), prepared
            )
        prepared = self._checked(prepared)
        if not prepared:
            return []
        store = self._store
        if store is None:  # opening (and migrating) blocks: not on the event loop
            store = await self.bridge(lambda: self.store)
        news = [p.new for p in prepared]
        hooked = self.hooks.enqueue_middleware or self.hooks.wants("enqueued")
        if hooked:
            news, seen, entered = self._hooked(news)
        handles: list[Job] = []
        try:
            news = await self.bridge(self.admission.admit, news)
            news = self._caused(news)
            inserted = await store.job_insert_many_async(news, connection)
            handles = [Job(self, i.id, i.duplicate) for i in inserted]
        finally:
            if hooked:
                self._enqueued(seen, entered, handles)
        return handles

    def _caused(self, news: list[NewJob]) -> list[NewJob]:
        """Jobs enqueued while a job runs carry its id and its root's (docs/workflows.md)."""
        ids = causes(self) if CURRENT.get() is not None else None
        if ids is None:
            return news
        parent, root = ids
        # The root's id is also the correlation id that logs, traces and error reports carry
        # (telemetry/_hooks.py), kept in meta so a worker knows it without reading the root.
        return [
            dataclasses.replace(
                n, parent_id=parent, root_id=root, meta={"correlation_id": root, **n.meta}
            )
            if n.parent_id is None
            else n
            for n in news
        ]

    def _checked(self, jobs: Iterable[PreparedJob]) -> list[PreparedJob]:
        prepared = list(jobs)
        for p in prepared:
            if not isinstance(p, PreparedJob):
                raise TypeError(f"enqueue_many takes jobs made by job_type.prepare(...), got {p!r}")
            if p.job_type.app is not self:
                raise ConfigurationError(f"job {p.job_type.name!r} belongs to another app")
        return prepared

    def create_outbox(self, connection: Any) -> None:
        """Create the outbox table in the application's own database if it is missing (in
        the caller's transaction on `connection`); run it with your own migrations."""
        from offload.app._outbox import create_table

        create_table(connection)

    def stage(self, connection: Any, jobs: Iterable[PreparedJob]) -> list[Staged]:
        """Stage jobs in the outbox of the application's own database, inside the caller's
        open transaction on `connection`; `offload relay` moves them to the store."""
        from offload.app._outbox import stage

        prepared = list(jobs)
        for p in prepared:
            if not isinstance(p, PreparedJob):
                raise TypeError(f"stage takes jobs made by job_type.prepare(...), got {p!r}")
        return stage(connection, prepared)

    # --- workflows (docs/workflows.md) -------------------------------------------------
    def chain(self, *jobs: PreparedJob, name: str | None = None) -> Chain:
        """Jobs that run one after the other, each once the one before has completed:
        `app.chain(a.prepare(...), b.prepare(...)).enqueue()`."""
        return Chain(self, jobs, name)

    def group(
        self,
        jobs: Iterable[PreparedJob],
        *,
        then: PreparedJob | None = None,
        on_failure: PreparedJob | None = None,
        name: str | None = None,
    ) -> Group:
        """Jobs that run side by side; `then` runs once when all have completed, `on_failure`
        once when any ends dead or cancelled."""
        return Group(self, jobs, then, on_failure, name)

    def workflow(self, name: str | None = None) -> Workflow:
        """A graph of named steps: `wf.step("b", b.prepare(), depends_on=["a"])`."""
        return Workflow(self, name)

    def saga(self, steps: Iterable[Step], *, name: str | None = None) -> Saga:
        """Steps (`offload.Step(job.prepare(...), undo=other.prepare(...))`) that run in order;
        when one ends dead or cancelled, the undo jobs of those that completed run, last first."""
        return Saga(self, steps, name)

    def get_job(self, job_id: int) -> Job:
        """A handle on an existing job (JobNotFoundError if there is none)."""
        return Job(self, int(job_id)).refresh()

    def job_versions(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Jobs still to run (available, scheduled, retryable, running) per kind and argument
        version, by kind then version: one dict each with `kind`, `version`, a count per
        state, `total`, and `declared`, the version this app declares for the kind (None when
        it declares none). A rolling deploy is done when no kind has jobs of an older version
        left (docs/versions.md)."""
        rows = version_rows(self.store.job_versions(kind))
        for row in rows:
            job_type = self.jobs.get(row["kind"])
            row["declared"] = None if job_type is None else job_type.version
        return rows


def _is_async(connection: Any) -> bool:
    """Whether a caller's connection is an async one (its `execute` is a coroutine function)."""
    return inspect.iscoroutinefunction(getattr(connection, "execute", None))
