"""How a job type is declared: a function or class, its options, and per-call overrides."""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from offload._backoff import BackoffFn, as_backoff
from offload._errors import ConfigurationError, InvalidArgumentsError, InvalidTextError
from offload._states import DELIVERIES
from offload._text import advice, name_problem, shown, text_problem
from offload._time import time_problem
from offload.dispatch._limits import Limit
from offload.dispatch._unique import Unique
from offload.jobs._dispatch import (
    DISPATCH_OPTIONS,
    check_declaration,
    dispatch_fields,
    dispatch_option,
)
from offload.jobs._encrypt import (
    ENCRYPT_META,
    check_encrypt_names,
    check_plain_derivations,
    encrypt_option,
    seal_args,
)
from offload.jobs._long import (
    LONG_OPTIONS,
    PER_CALL_LONG,
    check_iteration,
    iteration_kind,
    long_option,
    without_cursor,
)
from offload.jobs._notify import NOTIFY_META, notify_option
from offload.jobs._payload import args_json, check_json
from offload.jobs._policy import POLICY_OPTIONS, job_policy, policy_option
from offload.jobs._secrets import SECRET_META, check_secret_names, secret_option
from offload.jobs._signature import Signature
from offload.jobs._versions import VERSION_OPTIONS, Versions, versions_of
from offload.store._contract import NewJob

if TYPE_CHECKING:
    from typing_extensions import ParamSpec as ParamSpecWithDefault
    from typing_extensions import TypeVar as TypeVarWithDefault

    from offload.app._handle import Job
    from offload.app._offload import Offload

    # A job type's parameters and its function's result (docs/typing.md); a plain `JobType`
    # (one looked up by name) takes any arguments and gives Any.
    P = ParamSpecWithDefault("P", default=...)
    R = TypeVarWithDefault("R", default=Any)
else:
    P = ParamSpec("P")
    R = TypeVar("R")

Seconds = float | int | timedelta
MAX_QUEUE_LENGTH = 100
MAX_KIND_LENGTH = 200
MAX_OWNER_LENGTH = 100


def check_kind_name(name: str, what: str = "a job type's name") -> str:
    """A job type (or schedule) name, refused when it could not be told apart from another."""
    problem = name_problem(name, MAX_KIND_LENGTH)
    if problem is not None:
        raise ConfigurationError(
            f"{what} {shown(name)} {problem}; give a plain name, e.g. name='send_welcome'"
        )
    return name


def seconds(value: Seconds | None, what: str) -> float | None:
    """A duration in seconds from a number or a timedelta; refuses negatives and NaN."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{what} must be seconds or a timedelta, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ConfigurationError(f"{what} must be a finite, non-negative duration, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class JobOptions:
    """Options of a job type; each can be overridden per call with `.options(...)`."""

    queue: str = "default"
    priority: int = 0
    max_attempts: int = 20
    backoff: BackoffFn = field(default_factory=lambda: as_backoff(None))
    timeout: float | None = None
    delivery: str = "at_least_once"
    result_ttl: float = 86400.0
    # Load shedding and unique jobs (offload/app/_admission.py, docs/scheduling.md).
    expires: float | datetime | None = None
    unique: Unique | None = None
    critical: bool = False
    max_backlog: int | None = None
    # Deadlines, fairness and limits (offload/jobs/_dispatch.py, docs/scheduling.md).
    slo: float | None = None
    weight: float = 1.0
    cost: float = 1.0
    tenant: str | None = None
    tenant_weight: float | dict[str, float] = 1.0
    limit: Limit | None = None
    # Long jobs (docs/long-jobs.md): an iteration job's checkpoint interval (seconds, or an int
    # number of yields), its time slice (None: the app's default) and its health predicate.
    # Run time (docs/run-time.md): an overrun of max_run_time by a job that cannot stop is
    # reported, naming the team that owns the job type.
    checkpoint_every: float | int = 5.0
    max_run_time: float | None = None
    throttle_on: Callable[[], Any] | None = None
    owner: str | None = None
    # Arguments never shown or logged (offload/jobs/_secrets.py, docs/security.md).
    secret_args: tuple[str, ...] = ()
    # Argument versions for rolling deploys (offload/jobs/_versions.py, docs/versions.md):
    # upgrade[N] turns version N-1 arguments into version N; version_grace is how long a job
    # of a newer version waits for a worker that knows it (None: the application's).
    version: int = 1
    upgrade: Mapping[int, Callable[[dict[str, Any]], dict[str, Any]]] | None = None
    version_grace: float | None = None
    # Arguments (and the result) encrypted in the store: ("*",) for all (jobs/_encrypt.py).
    encrypt: tuple[str, ...] = ()
    # A URL told of each job's end by a signed webhook (offload/jobs/_notify.py).
    notify: str | None = None

    def validate(self, name: str) -> JobOptions:
        if not isinstance(self.queue, str):
            raise ConfigurationError(f"job {name!r}: queue must be a non-empty name")
        problem = name_problem(self.queue, MAX_QUEUE_LENGTH)
        if problem is not None:
            raise ConfigurationError(
                f"job {name!r}: queue {shown(self.queue)} {problem}; give a plain name, "
                "e.g. queue='emails'"
            )
        if isinstance(self.priority, bool) or not isinstance(self.priority, int):
            raise ConfigurationError(f"job {name!r}: priority must be an integer (higher first)")
        if not -1000 <= self.priority <= 1000:
            raise ConfigurationError(f"job {name!r}: priority must be within -1000..1000")
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise ConfigurationError(f"job {name!r}: max_attempts must be an integer")
        if self.max_attempts < 1:
            raise ConfigurationError(f"job {name!r}: max_attempts must be at least 1")
        if self.delivery not in DELIVERIES:
            raise ConfigurationError(
                f"job {name!r}: delivery must be 'at_least_once' or 'at_most_once', "
                f"got {self.delivery!r}"
            )
        if self.timeout is not None and self.timeout <= 0:
            raise ConfigurationError(f"job {name!r}: timeout must be positive")
        if self.max_run_time is not None and self.max_run_time <= 0:
            raise ConfigurationError(f"job {name!r}: max_run_time must be positive")
        if self.owner is not None:
            check_owner(self.owner, f"job {name!r}: owner")
        return self


def check_owner(owner: object, what: str) -> str:
    """The team owning a job type: a short one-line label, e.g. owner='payments'."""
    if not isinstance(owner, str):
        raise ConfigurationError(f"{what} must be text naming a team, e.g. owner='payments'")
    problem = name_problem(owner, MAX_OWNER_LENGTH)
    if problem is not None:
        raise ConfigurationError(
            f"{what} {shown(owner)} {problem}; name the team, e.g. owner='payments'"
        )
    return owner


_OPTION_NAMES = {
    "queue",
    "priority",
    "max_attempts",
    "backoff",
    "timeout",
    "delivery",
    "result_ttl",
    "checkpoint_every",
    "max_run_time",
    "throttle_on",
    "secret_args",
    "notify",
    *POLICY_OPTIONS,
    *DISPATCH_OPTIONS,
}
# Options of the job type as a whole, read by workers from the declaration: not per call.
_DECLARATION_NAMES = {"owner", "encrypt", *VERSION_OPTIONS}
_CALL_NAMES = {"delay", "at", "connection", "unique_key", "meta"}


def build_options(base: JobOptions, name: str, given: dict[str, Any]) -> JobOptions:
    """Apply option overrides by keyword, with clear errors for unknown names."""
    unknown = set(given) - _OPTION_NAMES - _DECLARATION_NAMES
    if unknown:
        raise ConfigurationError(
            f"job {name!r}: unknown option {sorted(unknown)[0]!r}; "
            f"options are {', '.join(sorted(_OPTION_NAMES | _DECLARATION_NAMES))}"
        )
    changes: dict[str, Any] = {}
    for key, value in given.items():
        if key == "backoff":
            try:
                changes[key] = as_backoff(value)
            except (TypeError, ValueError) as exc:
                raise ConfigurationError(f"job {name!r}: {exc}") from None
        elif key in ("timeout", "result_ttl", "version_grace"):
            changes[key] = seconds(value, f"job {name!r}: {key}")
        elif key in LONG_OPTIONS:
            changes[key] = long_option(name, key, value)
        elif key == "secret_args":
            changes[key] = secret_option(name, value)
        elif key == "encrypt":
            changes[key] = encrypt_option(name, value)
        elif key == "notify":
            changes[key] = notify_option(name, value)
        elif key in POLICY_OPTIONS:
            changes[key] = policy_option(name, key, value)
        elif key in DISPATCH_OPTIONS:
            changes[key] = dispatch_option(name, key, value)
        else:
            changes[key] = value
    return replace(base, **changes).validate(name)


class JobType(Generic[P, R]):
    """A declared job type. Call `.enqueue(...)` to run it on a worker, or call it directly.

    Generic in its function's parameters and result, so that a type checker checks the
    arguments of `enqueue` and knows what `result()` gives (docs/typing.md)."""

    def __init__(
        self,
        app: Offload,
        target: Callable[..., Any] | type,
        name: str,
        options: JobOptions,
        cron: str | None = None,
    ) -> None:
        self.app = app
        self.target = target
        self.name = name
        self.options_ = options
        self.cron = cron
        if inspect.isclass(target):
            run = getattr(target, "run", None)
            if run is None or not callable(run):
                raise ConfigurationError(
                    f"job class {target.__name__} needs a run(self, ...) method, e.g.\n"
                    f"    class {target.__name__}:\n"
                    "        def run(self, image_id: int) -> None: ..."
                )
            bound = run.__get__(object.__new__(target))
        else:
            bound = target
        # An iteration job (a generator function, sync or async) takes `cursor=` from offload,
        # not from its producers: its signature for enqueue leaves it out.
        self.iterates = iteration_kind(bound) is not None
        self.is_async = inspect.iscoroutinefunction(bound) or iteration_kind(bound) == "async"
        check_iteration(name, bound, options)
        self.signature = Signature(without_cursor(bound) if self.iterates else bound, name)
        check_declaration(name, options, self.signature)
        params = self.signature.sig.parameters
        open_ended = any(p.kind is p.VAR_KEYWORD for p in params.values())
        check_secret_names(name, options.secret_args, None if open_ended else list(params))
        check_encrypt_names(name, options.encrypt, None if open_ended else list(params))
        check_plain_derivations(name, options)
        self.versions: Versions = versions_of(
            name, options.version, options.upgrade, options.version_grace
        )
        self.__doc__ = getattr(target, "__doc__", None)
        self.__wrapped__ = target
        self._plan: _Plan | None = None

    def __repr__(self) -> str:
        return f"<JobType {self.name} queue={self.options_.queue}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        """Run the job's code here and now, as a plain call."""
        return self.function()(*args, **kwargs)

    def function(self) -> Callable[..., Any]:
        """The callable a worker invokes for one run (a fresh instance for class jobs)."""
        if inspect.isclass(self.target):
            instance: Any = self.target()
            run: Callable[..., Any] = instance.run
            return run
        return self.target

    @property
    def max_run_time(self) -> float | None:
        """Seconds one run should take at most: the job type's own, else the app's default
        (None: no limit). `timeout` stays the hard limit that fails an attempt."""
        own = self.options_.max_run_time
        return own if own is not None else self.app.config.max_run_time

    @property
    def version(self) -> int:
        """The version of the arguments this job type takes (`@app.job(version=...)`, 1 when
        not given): the version its jobs are stored with (docs/versions.md)."""
        return self.versions.version

    @property
    def version_grace(self) -> float:
        """Seconds a job of a newer version than this one waits for a worker that knows it
        before its attempts fail: the job type's own, else the app's `version_grace`."""
        own = self.versions.grace
        return own if own is not None else self.app.config.version_grace

    def options(self, **overrides: Any) -> JobCall[P, R]:
        """Per-call options: queue, priority, max_attempts, backoff, timeout, delivery,
        result_ttl, delay, at, unique_key, meta, connection."""
        return JobCall(self, {}).options(**overrides)

    def prepare(self, *args: P.args, **kwargs: P.kwargs) -> PreparedJob:
        """Validate arguments into a job ready for `app.enqueue_many`."""
        return self.prepare_plain(self.signature.bind(args, kwargs))

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job[R]:
        """Store the job for a worker; it is committed when this returns."""
        job: Job[R] = self.app.enqueue_many([self.prepare(*args, **kwargs)])[0]
        return job

    def prepare_plain(self, arguments: dict[str, Any]) -> PreparedJob:
        """A job from checked arguments with the job type's own options (no per-call ones):
        what those options decide is worked out once per job type, not once per job."""
        plan = self._plan
        if plan is None or plan.options is not self.options_:
            plan = self._plan = _Plan.of(self)
        text = args_json(arguments, self.name, self.app.config.max_payload_bytes)
        fields = plan.fields
        if fields is None:  # tenant or limit key templates read the arguments
            fields = {
                **plan.common,
                **dispatch_fields(self.name, self.signature, arguments, plan.options),
            }
        policy = None
        if plan.policy:
            o = plan.options
            policy = job_policy(
                self.name, self.signature, arguments, o.expires, o.unique, o.critical, o.max_backlog
            )
        meta = secret_meta(plan.options.secret_args)
        if plan.options.notify is not None:
            meta[NOTIFY_META] = plan.options.notify
        if plan.options.encrypt:  # sealed here, in the producer (after the checks above)
            arguments, text, meta = _sealed(self, arguments, meta)
        return PreparedJob(
            self, NewJob(args=arguments, meta=meta, policy=policy, args_json=text, **fields)
        )

    async def enqueue_async(self, *args: P.args, **kwargs: P.kwargs) -> Job[R]:
        """`enqueue` for async code."""
        return await JobCall(self, {}).enqueue_async(*args, **kwargs)


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a job type's own options decide for each of its jobs, worked out once."""

    options: JobOptions
    common: dict[str, Any]  # NewJob fields that are the same for every job
    fields: dict[str, Any] | None  # with the dispatch fields, when they don't read arguments
    policy: bool  # whether each job needs `job_policy`

    @classmethod
    def of(cls, job_type: JobType) -> _Plan:
        o = job_type.options_.validate(job_type.name)
        common = {
            "kind": job_type.name,
            "queue": o.queue,
            "priority": o.priority,
            "max_attempts": o.max_attempts,
            "delivery": o.delivery,
            "timeout": o.timeout,
            "result_ttl": o.result_ttl,
            "version": job_type.versions.version,
        }
        fields = None
        if o.tenant is None and o.limit is None:
            fields = {**common, **dispatch_fields(job_type.name, job_type.signature, {}, o)}
        policy = not (
            o.expires is None and o.unique is None and not o.critical and o.max_backlog is None
        )
        return cls(o, common, fields, policy)


@dataclass(frozen=True, slots=True)
class PreparedJob:
    """A validated job, not yet stored."""

    job_type: JobType
    new: NewJob
    connection: Any = None


class JobCall(Generic[P, R]):
    """A job type with per-call options applied."""

    def __init__(self, job_type: JobType[P, R], overrides: dict[str, Any]) -> None:
        self.job_type = job_type
        self.overrides = overrides

    def options(self, **overrides: Any) -> JobCall[P, R]:
        merged = {**self.overrides, **overrides}
        declared = set(merged) & _DECLARATION_NAMES
        if declared:
            option = sorted(declared)[0]
            raise ConfigurationError(
                f"job {self.job_type.name!r}: {option} belongs to the job type, not to one "
                f"call; give it where the job is declared, e.g. @app.job({option}=...)"
            )
        unknown = set(merged) - _OPTION_NAMES - _CALL_NAMES
        if unknown:
            raise ConfigurationError(
                f"job {self.job_type.name!r}: unknown option {sorted(unknown)[0]!r}; options are "
                f"{', '.join(sorted(_OPTION_NAMES | _CALL_NAMES))}"
            )
        if merged.get("delay") is not None and merged.get("at") is not None:
            raise ConfigurationError("give delay or at, not both")
        return JobCall(self.job_type, merged)

    def prepare(self, *args: P.args, **kwargs: P.kwargs) -> PreparedJob:
        arguments = self.job_type.signature.bind(args, kwargs)
        if not self.overrides:
            return self.job_type.prepare_plain(arguments)
        return self.prepare_named(arguments, checked=True)

    def prepare_named(self, arguments: dict[str, Any], checked: bool = False) -> PreparedJob:
        """A job from arguments given by name (HTTP, CLI); checks them unless `checked`."""
        jt = self.job_type
        if not checked:
            if not isinstance(arguments, dict):
                raise InvalidArgumentsError(
                    f"arguments of {jt.name}() must be an object of name: value"
                )
            arguments = jt.signature.bind_named(arguments)
        if not self.overrides:
            return jt.prepare_plain(arguments)
        text = args_json(arguments, jt.name, jt.app.config.max_payload_bytes)
        call = {k: v for k, v in self.overrides.items() if k in _CALL_NAMES}
        opts = build_options(
            jt.options_, jt.name, {k: v for k, v in self.overrides.items() if k in _OPTION_NAMES}
        )
        meta = call.get("meta") or {}
        if not isinstance(meta, dict):
            raise InvalidArgumentsError("meta must be a dict of JSON values", "meta", "meta")
        meta = check_json(meta, "meta", path="meta")
        # Long-job options given per call are stored with the job, in its meta, for its worker.
        for key in PER_CALL_LONG:
            if key in self.overrides:
                value = getattr(opts, key)
                meta = {**meta, key: value}
        if "throttle_on" in self.overrides:
            raise ConfigurationError(
                f"job {jt.name!r}: throttle_on is a callable, which cannot be stored with one "
                "job; declare it with the job type: @app.job(throttle_on=...)"
            )
        if opts.secret_args:
            meta = {**meta, **secret_meta(opts.secret_args)}
        if "notify" in self.overrides or opts.notify is not None:
            meta = {k: v for k, v in meta.items() if k != NOTIFY_META}
            if opts.notify is not None:
                meta[NOTIFY_META] = opts.notify
        unique_key = call.get("unique_key")
        if unique_key is not None:
            if not isinstance(unique_key, str):
                raise ConfigurationError("unique_key must be a string")
            problem = text_problem(unique_key)
            if problem is not None:
                raise InvalidTextError(
                    f"unique_key holds {problem}: {advice(problem)}", "unique_key", "unique_key"
                )
        dispatch = dispatch_fields(jt.name, jt.signature, arguments, opts)
        policy = job_policy(
            jt.name,
            jt.signature,
            arguments,
            opts.expires,
            opts.unique,
            opts.critical,
            opts.max_backlog,
        )
        if jt.options_.encrypt:  # sealed here, in the producer (after the checks above)
            arguments, text, meta = _sealed(jt, arguments, meta)
        elif ENCRYPT_META in meta:  # only offload says what is encrypted
            meta = {k: v for k, v in meta.items() if k != ENCRYPT_META}
        return PreparedJob(
            jt,
            NewJob(
                kind=jt.name,
                queue=opts.queue,
                args=arguments,
                priority=opts.priority,
                max_attempts=opts.max_attempts,
                delivery=opts.delivery,
                timeout=opts.timeout,
                scheduled_at=_scheduled_at(call.get("at")),
                delay=_delay(call.get("delay")),
                unique_key=unique_key,
                result_ttl=opts.result_ttl,
                meta=meta,
                **dispatch,
                policy=policy,
                args_json=text,
                version=jt.versions.version,
            ),
            call.get("connection"),
        )

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job[R]:
        prepared = self.prepare(*args, **kwargs)
        job: Job[R] = self.job_type.app.enqueue_many([prepared], connection=prepared.connection)[0]
        return job

    async def enqueue_async(self, *args: P.args, **kwargs: P.kwargs) -> Job[R]:
        prepared = self.prepare(*args, **kwargs)
        jobs: list[Job[R]] = await self.job_type.app.enqueue_many_async(
            [prepared], connection=prepared.connection
        )
        return jobs[0]


def _scheduled_at(at: datetime | None) -> float | None:
    """Epoch seconds of an aware datetime; None means "use the delay"."""
    if at is None:
        return None
    if not isinstance(at, datetime):
        raise ConfigurationError(f"at must be a datetime, got {at!r}")
    if at.tzinfo is None:
        raise ConfigurationError(
            "at must be timezone-aware, e.g. datetime(2030, 1, 1, tzinfo=timezone.utc)"
        )
    ts = at.timestamp()
    problem = time_problem(ts)
    if problem is not None:
        raise InvalidArgumentsError(f"at {at.isoformat()} is refused: {problem}", "at", "at")
    return ts


def _delay(value: Seconds | None) -> float:
    """A call's delay in seconds, refused when it would run the job past the accepted range."""
    delay = seconds(value, "delay") or 0.0
    if time_problem(time.time() + delay) is not None:
        raise InvalidArgumentsError(
            f"delay {delay!r} s is refused: the job would run after 9999-12-31 UTC; "
            "give a shorter delay",
            "delay",
            "delay",
        )
    return delay


def secret_meta(names: tuple[str, ...]) -> dict[str, Any]:
    """The meta entry that records a job's secret argument names (a new dict each time)."""
    return {SECRET_META: list(names)} if names else {}


def _sealed(
    jt: JobType, arguments: dict[str, Any], meta: dict[str, Any]
) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """Arguments with the job type's chosen ones encrypted, their JSON text and the meta that
    records them (offload/jobs/_encrypt.py)."""
    sealed, entry = seal_args(jt.name, arguments, jt.options_.encrypt)
    return sealed, args_json(sealed, jt.name, jt.app.config.max_payload_bytes), {**meta, **entry}
