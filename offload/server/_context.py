"""The server's shared state and the wrapper every API endpoint goes through.

The wrapper is the one place that authenticates, checks the role, refuses cross-origin writes
and turns offload's exceptions into problem responses, so no endpoint can forget one.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from offload._errors import (
    ConfigurationError,
    InvalidArgumentsError,
    JobNotFoundError,
    OffloadError,
    PayloadTooLargeError,
    StoreBusyError,
    StoreCorruptError,
    StoreError,
    StoreFullError,
    UnknownJobError,
)
from offload.app._claim_gate import ClaimGate
from offload.app._offload import Offload
from offload.server._auth import Auth, Principal, same_origin
from offload.server._config import ServerConfig
from offload.server._metrics import Metrics
from offload.server._problems import Problem, problem_response
from offload.server._scope import Scope, refuse_limited
from offload.server._waiting import Slots, TtlCache, Waker

if TYPE_CHECKING:
    from starlette.templating import Jinja2Templates

log = logging.getLogger("offload.server")
T = TypeVar("T")
BODY_OVERHEAD = 64 * 1024
STORE_FULL_RETRY_AFTER = 30  # seconds: freeing disk space takes people, not milliseconds


class Server:
    """Everything a request needs: the app, the configuration, auth, wake-ups, counters."""

    templates: Jinja2Templates
    openapi: dict[str, Any]
    create_schema: dict[str, Any]

    def __init__(self, app: Offload, config: ServerConfig) -> None:
        self.app = app
        self.config = config
        self.auth = Auth(config.tokens, config.session_seconds)
        self.waker = Waker(lambda: app.store.listener([]))
        self.gate = ClaimGate(app)
        # Two bounds, so that neither kind of waiting request can starve the other.
        self.result_waits = Slots(config.max_result_waits, "result waits")
        self.worker_polls = Slots(config.max_worker_polls, "worker long polls")
        self.cache = TtlCache(config.counts_cache_seconds)
        self.metrics = Metrics(
            app,
            self.seen_within,
            tuple(k.queue for k in config.external_kinds),
            config.counts_cache_seconds,
        )
        self.counters = self.metrics.counters
        self.max_body = config.max_body_bytes or app.config.max_payload_bytes + BODY_OVERHEAD
        self.operations: dict[str, dict[str, Any]] = {}
        # HTTP workers this process saw: when first, and when it last recorded them
        self._seen: OrderedDict[str, tuple[float, float]] = OrderedDict()
        # Which token first named each worker id (the latest 10,000): only it may use the id
        self._owners: OrderedDict[str, str] = OrderedDict()
        # Kinds met in claims that the app does not declare (skipped for kind-scoped tokens)
        self.kinds_seen: set[str] = set()
        # Store calls refused for want of space or a damaged file, until they succeed again
        self._refused: dict[Callable[..., Any], tuple[float, StoreFullError | StoreCorruptError]]
        self._refused = {}

    def worker_seen(self, worker: str) -> float | None:
        """When this process first saw an HTTP worker, if its record is due for a refresh
        (every third of a heartbeat interval); else None. Remembers the latest 10,000."""
        now = time.time()
        first, last = self._seen.pop(worker, (now, 0.0))
        due = now - last >= self.app.config.heartbeat_interval / 3
        self._seen[worker] = (first, now if due else last)
        while len(self._seen) > 10_000:
            self._seen.popitem(last=False)
        return first if due else None

    def forget_worker(self, worker: str) -> None:
        self._seen.pop(worker, None)
        self._owners.pop(worker, None)

    def own_worker(self, worker: str, principal: Principal) -> None:
        """Refuse (403) a token that names a worker id another token registered (to
        heartbeat, fetch as it, overwrite or deregister it). The owner is kept in the worker's
        record in the store (`WorkerInfo.owner`, set by its first beat), so every replica
        agrees; this process remembers the owners it has read. Blocking: run it off the loop."""
        if principal.via == "local":
            return
        owner = self._owners.pop(worker, None)
        if owner is None:
            owner = self.app.store.worker_owner(worker) or principal.name
        self._owners[worker] = owner
        while len(self._owners) > 10_000:
            self._owners.popitem(last=False)
        if owner != principal.name:
            raise Problem(
                "forbidden",
                f"worker {worker!r} belongs to another token; a worker may only use its own "
                "record (give each worker process its own id)",
            )

    def known_kinds(self) -> set[str]:
        """Every kind this server knows of: declared, external, and met in claims."""
        return {*self.app.jobs, *(k.name for k in self.config.external_kinds), *self.kinds_seen}

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking store call off the event loop, remembering whether the store refused
        it (`refused_recently`)."""
        try:
            result = await self.app.bridge(fn, *args)
        except (StoreFullError, StoreCorruptError) as exc:
            now = time.monotonic()
            self._refused = {  # those too old to count go: this stays small
                f: seen
                for f, seen in self._refused.items()
                if now - seen[0] < STORE_FULL_RETRY_AFTER
            }
            self._refused[fn] = (now, exc)
            raise
        if self._refused:
            self._refused.pop(fn, None)
        return result

    def refused_recently(
        self, within: float = STORE_FULL_RETRY_AFTER
    ) -> StoreFullError | StoreCorruptError | None:
        """The latest refusal, within `within` seconds, of a store call that has not succeeded
        since (an enqueue refused for a full disk stays unwritable until an enqueue goes
        through, or `within` passes)."""
        now = time.monotonic()
        recent = [(at, exc) for at, exc in self._refused.values() if now - at < within]
        return max(recent, key=lambda pair: pair[0])[1] if recent else None

    @property
    def seen_within(self) -> float:
        """How recently a worker must have reported itself to count as alive."""
        return max(self.app.config.lease_seconds, 3 * self.app.config.heartbeat_interval)


@dataclass(frozen=True, slots=True)
class Call:
    """One API request: the server, the request, and who made it."""

    server: Server
    request: Request
    principal: Principal

    @property
    def app(self) -> Offload:
        return self.server.app

    @property
    def scope(self) -> Scope:
        """What the caller may reach (offload/server/_scope.py)."""
        return self.principal.scope

    @property
    def operation(self) -> dict[str, Any]:
        return self.server.operations[self.request.scope["offload.operation"]]


Handler = Callable[[Call], Awaitable[Response]]


def api(
    operation_id: str, role: str, *, scoped: bool = False
) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wrap an endpoint: authenticate, authorise `role`, map errors to problems. A token
    limited to tenants or without data access is refused (403) unless the endpoint is
    `scoped`: it applies `call.scope` to everything it shows and changes."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            server: Server = request.app.state.offload
            request.scope["offload.operation"] = operation_id
            try:
                principal = server.auth.identify(request)
                if principal is None:
                    raise Problem(
                        "unauthorized",
                        "this server needs a token: send Authorization: Bearer <token>",
                        headers={"WWW-Authenticate": 'Bearer realm="offload"'},
                    )
                if principal.via == "cookie" and request.method != "GET":
                    raise Problem(
                        "unauthorized",
                        "the dashboard session does not authorise API writes; send a token",
                        headers={"WWW-Authenticate": 'Bearer realm="offload"'},
                    )
                if not principal.allows(role):
                    raise Problem(
                        "forbidden",
                        f"token {principal.name!r} has role {principal.role!r}; this needs "
                        f"{role!r} or above",
                    )
                if not scoped:
                    refuse_limited(principal.name, principal.scope)
                if (
                    principal.via == "local"
                    and request.method != "GET"
                    and not same_origin(request)
                ):
                    raise Problem(
                        "cross-origin", "a web page of another origin may not change jobs here"
                    )
                return await handler(Call(server, request, principal))
            except Exception as exc:  # noqa: BLE001 - every error becomes a problem document
                return problem_response(to_problem(exc), request.url.path)

        return endpoint

    return wrap


def store_problem(exc: StoreFullError | StoreCorruptError) -> Problem:
    """A store that refuses writes (503, retry later) or is damaged (503, no retry helps).
    The detail names no file or host: the server's log has the full message."""
    log.warning("%s", exc)
    if isinstance(exc, StoreFullError):
        return Problem(
            "store-full",
            "the store cannot take writes: its disk is full; nothing was stored, try again later",
            headers={"Retry-After": str(STORE_FULL_RETRY_AFTER)},
        )
    return Problem("store-damaged", "the store's file is damaged; the server log says more")


def to_problem(exc: BaseException) -> Problem:
    """The problem document for an exception raised while serving."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, PayloadTooLargeError):
        return Problem("payload-too-large", str(exc), argument=exc.argument)
    if isinstance(exc, InvalidArgumentsError):
        return Problem("invalid-arguments", str(exc), argument=exc.argument)
    if isinstance(exc, UnknownJobError):
        return Problem("unknown-kind", str(exc))
    if isinstance(exc, ConfigurationError):
        return Problem("invalid-options", str(exc))
    if isinstance(exc, JobNotFoundError):
        return Problem("job-not-found", str(exc))
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(exc, OffloadError) and isinstance(retry_after, (int, float)):
        # load shedding refused the job (the dispatcher's OverloadedError and kin)
        seconds = str(max(1, math.ceil(retry_after)))
        return Problem("overloaded", str(exc), headers={"Retry-After": seconds})
    if isinstance(exc, StoreBusyError):
        return Problem("overloaded", str(exc), headers={"Retry-After": "2"})
    if isinstance(exc, StoreFullError | StoreCorruptError):
        return store_problem(exc)
    if isinstance(exc, StoreError):
        log.warning("store error: %s", exc)
        return Problem(
            "store-unavailable", "the store failed; try again", headers={"Retry-After": "5"}
        )
    log.exception("unexpected error", exc_info=exc)
    return Problem("internal-error", "an unexpected error happened; the server log has details")
