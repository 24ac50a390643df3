"""The ASGI application: routes, the guard around them, and the server's lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from offload._errors import StoreBusyError, StoreCorruptError, StoreFullError
from offload.app._offload import Offload
from offload.server import (
    _alerts_api,
    _dashboard,
    _dashboard_alerts,
    _dashboard_bulk,
    _dashboard_rules,
    _job_events,
    _jobs_api,
    _jobs_spec,
    _openapi,
    _pauses_api,
    _pauses_ui,
    _rules_api,
    _topics_api,
    _topics_ui,
    _worker_api,
    _workflows_api,
    _workflows_ui,
)
from offload.server._auth import forwarded, forwarded_https, host_allowed
from offload.server._config import ServerConfig, Token
from offload.server._context import Call, Server, api, store_problem, to_problem
from offload.server._http import json_response
from offload.server._links import ROOT
from offload.server._live import LiveFeed
from offload.server._pages import error_response, route_path
from offload.server._problems import Problem, problem_response

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),  # no-referrer would make forms send "Origin: null"
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", CSP.encode()),
]


class _Guard:
    """Refuses foreign Host names and forwarded requests when the server has no tokens, and
    ids too long for any route before routing (converting one would fail); believes the scheme
    a trusted proxy reports; adds security headers."""

    def __init__(self, app: ASGIApp, server: Server) -> None:
        self.app = app
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if not self.server.auth.enabled and not host_allowed(
            request, self.server.config.allowed_hosts
        ):
            response = problem_response(
                Problem(
                    "invalid-host",
                    "this server has no tokens, so it answers only to loopback names such as "
                    "127.0.0.1 or localhost",
                ),
                request.url.path,
            )
            await response(scope, receive, self._with_headers(send, static=False))
            return
        if not self.server.auth.enabled and forwarded(request):
            response = problem_response(
                Problem(
                    "forwarded-request",
                    "this server has no tokens, so it answers only requests made on this "
                    "machine, and a proxy forwarded this one; configure tokens to serve behind "
                    "a proxy",
                ),
                request.url.path,
            )
            await response(scope, receive, self._with_headers(send, static=False))
            return
        long_id = next((s for s in scope["path"].split("/") if s.isdigit() and len(s) > 19), None)
        if long_id is not None:  # past any id, and past what int() converts (4,300 digits)
            response = problem_response(
                Problem(
                    "invalid-parameter",
                    f"the id {long_id[:20]}… in the path has {len(long_id):,} digits; ids have "
                    "at most 19",
                ),
                request.url.path[:200],
            )
            await response(scope, receive, self._with_headers(send, static=False))
            return
        if self._trusted(scope) and forwarded_https(request):
            scope = {**scope, "scheme": "https"}
        static = route_path(request).startswith("/static/")
        token = ROOT.set(str(scope.get("root_path", "")).rstrip("/"))  # for links (_links.py)
        try:
            await self.app(scope, receive, self._with_headers(send, static))
        finally:
            ROOT.reset(token)

    def _trusted(self, scope: Scope) -> bool:
        """True when the request comes straight from a proxy the configuration trusts."""
        proxies = self.server.config.trusted_proxies
        client = scope.get("client")
        return bool(proxies) and ("*" in proxies or (client is not None and client[0] in proxies))

    @staticmethod
    def _with_headers(send: Send, static: bool) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers += [h for h in SECURITY_HEADERS if h[0] not in names]
                if not static and b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        return wrapped


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's routing errors (404, 405 ...) as problems: HTML pages for a browser on a
    dashboard path, JSON problem documents elsewhere (pages.py)."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        path = route_path(request)
        allowed = sorted(
            {
                method
                for route in request.app.router.routes
                if isinstance(route, Route) and route.path_regex.match(path)
                for method in route.methods or ()
            }
        )
        problem = Problem(
            "method-not-allowed",
            f"{request.method} is not allowed on {request.url.path}",
            headers={"Allow": ", ".join(allowed)},
        )
    elif exc.status_code == 404:
        problem = Problem("not-found", f"nothing at {request.url.path}")
    else:
        problem = Problem("invalid-parameter", str(exc.detail), status=exc.status_code)
    return error_response(request, problem)


async def _server_error(request: Request, exc: Exception) -> Response:
    """An exception no handler caught: a 500 problem (or page), logged with its traceback."""
    return error_response(request, to_problem(exc))


async def openapi(request: Request) -> Response:
    server: Server = request.app.state.offload
    return json_response(server.openapi)


class WriteProbe:
    """Whether the store takes writes. Learned by writing (one counter increment,
    `health_probes`) at most once per `every` seconds however often /healthz is asked, waited
    for at most `timeout` seconds (a write queued behind a long one is slow, not refused); and
    from the server's own calls that the store refused and that have not succeeded since: an
    enqueue may need room that the probe's small write does not (a PostgreSQL page with space
    left, say)."""

    def __init__(self, server: Server, every: float = 5.0, timeout: float = 2.0) -> None:
        self.server = server
        self.every = every
        self.timeout = timeout
        self._at = -math.inf

    async def refused(self) -> StoreFullError | StoreCorruptError | None:
        """Why the store does not take writes now, if it does not."""
        if time.monotonic() - self._at >= self.every:
            self._at = time.monotonic()
            probe = self.server.run(self.server.app.store.counter_add, "health_probes", 1)
            # Refused: `run` remembers it. Slow or busy: what is known stands.
            with contextlib.suppress(
                StoreFullError, StoreCorruptError, StoreBusyError, TimeoutError
            ):
                await asyncio.wait_for(probe, self.timeout)
        return self.server.refused_recently()


async def health(request: Request) -> Response:
    server: Server = request.app.state.offload
    try:
        await server.run(server.app.store.now)
        await server.run(server.app.store.schema_version)
        refused = await request.app.state.write_probe.refused()
    except (StoreFullError, StoreCorruptError) as exc:  # opening the store failed already
        return problem_response(store_problem(exc), request.url.path)
    except Exception:  # noqa: BLE001 - any failure means "not healthy"
        return problem_response(
            Problem("store-unavailable", "the store does not answer", headers={"Retry-After": "5"}),
            request.url.path,
        )
    if refused is not None:
        return problem_response(store_problem(refused), request.url.path)
    return json_response({"status": "ok", "store": server.app.store.engine})


@api("metrics", "read")
async def metrics(call: Call) -> Response:
    server = call.server
    body, content_type = await server.run(server.metrics.render, call.request.headers.get("accept"))
    return Response(body, headers={"Content-Type": content_type})


def create_app(
    offload_app: Offload,
    *,
    tokens: Iterable[Token] = (),
    config: ServerConfig | None = None,
    **options: Any,
) -> Starlette:
    """The ASGI application serving `offload_app`: REST API, worker protocol, dashboard.

    `tokens` (or `config.tokens`) enable authentication; other keyword options are fields of
    `ServerConfig` (external_kinds, allow_undeclared, max_wait, maintenance ...).
    """
    base = config or ServerConfig()
    fields: dict[str, Any] = dict(options)
    given = tuple(tokens)
    if given:
        fields["tokens"] = given
    if fields:
        from dataclasses import replace

        base = replace(base, **fields)
    cfg = base.validate()
    server = Server(offload_app, cfg)
    server.templates = _dashboard.templates()
    server.openapi = _openapi.build(server)
    server.create_schema = _jobs_spec.create_schema(server, published=False)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        maintenance = None
        if cfg.maintenance:
            from offload.maintenance import Maintenance

            owner = f"server:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
            maintenance = Maintenance(offload_app, owner)
            maintenance.start()
        try:
            yield
        finally:
            if maintenance is not None:
                maintenance.stop()
            server.waker.close()
            with contextlib.suppress(Exception):  # HTTP workers' last failed attempts
                offload_app.tally.flush(offload_app.store)

    static = StaticFiles(directory=str(_dashboard.HERE / "static"))
    routes = [
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/healthz", health, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *_jobs_api.ROUTES,
        *_job_events.ROUTES,
        *_rules_api.ROUTES,
        *_alerts_api.ROUTES,
        *_pauses_api.ROUTES,
        *_pauses_ui.ROUTES,
        *_topics_api.ROUTES,
        *_topics_ui.ROUTES,
        *_workflows_api.ROUTES,
        *_workflows_ui.ROUTES,
        *_worker_api.ROUTES,
        *_dashboard.ROUTES,
        *_dashboard_bulk.ROUTES,
        *_dashboard_rules.ROUTES,
        *_dashboard_alerts.ROUTES,
        Mount("/static", app=static, name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
        lifespan=lifespan,
    )
    app.state.offload = server
    app.state.write_probe = WriteProbe(server)
    app.state.live_feed = LiveFeed(server)
    app.state.job_watch = _job_events.JobWatch(server)
    app.add_middleware(_Guard, server=server)
    return app
