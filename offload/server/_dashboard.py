"""The dashboard: server-rendered pages, a login form, and CSRF-checked buttons.

Pages read the store through the contract in one blocking call each (on the bridge threads)
and render with Jinja2, escaping everything. The only script is a small static file; the
Content-Security-Policy forbids inline scripts.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from offload._states import FINAL_STATES, STATES
from offload.app._cron import next_tick
from offload.app._handle import Job, progress_of
from offload.jobs._encrypt import hidden_args
from offload.jobs._secrets import shown_record
from offload.server import _stats
from offload.server._auth import Auth, Principal, same_origin
from offload.server._bulk import search_of
from offload.server._catalog import kind_rows, paused_kinds, queue_rows
from offload.server._context import Server, to_problem
from offload.server._http import iso, path_id, query_params, read_body, reads_encrypted
from offload.server._live import events_response
from offload.server._pages import error_response, root
from offload.server._problems import CATALOGUE, Problem
from offload.server._scope import refuse_limited
from offload.store._contract import JobFilter, JobRecord
from offload.store._runtime import OVERRUN_WINDOW
from offload.store._workflows import step_of

HERE = Path(__file__).parent
RETRYABLE_STATES = ("dead", "cancelled", "shed", "completed", "retryable", "scheduled")
CANCELLABLE_STATES = ("scheduled", "available", "retryable")
NAV = (
    ("overview", "/", "Overview"),
    ("jobs", "/ui/jobs", "Jobs"),
    ("queues", "/ui/queues", "Queues"),
    ("schedules", "/ui/schedules", "Schedules"),
    ("topics", "/ui/topics", "Topics"),
    ("workers", "/ui/workers", "Workers"),
    ("workflows", "/ui/workflows", "Workflows"),
    ("rules", "/ui/rules", "Rules"),
    ("runtime", "/ui/run-time", "Run time"),
)


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def _short(value: Any, n: int = 90) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= n else text[: n - 1] + "…"


def error_view(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry of a job's errors list as the pages show it, whatever it holds: entries are
    data (a hand-edited or foreign row may hold anything), so missing or odd fields read as
    text and nothing named in them is ever looked up."""
    error = entry.get("error")
    if not isinstance(error, str):
        error = json.dumps(entry if error is None else error, ensure_ascii=False, default=str)
    at = entry.get("at")
    return {
        "kind": str(entry.get("kind", "error")),
        "error": error,
        "traceback": str(entry.get("traceback") or ""),
        "at": float(at) if isinstance(at, (int, float)) and not isinstance(at, bool) else None,
    }


def last_error(record: JobRecord) -> str:
    """The message of a job's last failed attempt for a list, or why its errors are unreadable."""
    if "errors" in record.undecodable:
        return "(errors list cannot be decoded)"
    return error_view(record.errors[-1])["error"] if record.errors else ""


def last_error_at(record: JobRecord) -> float | None:
    """When a job's last attempt failed, or when it finished if that is not recorded."""
    at = error_view(record.errors[-1])["at"] if record.errors else None
    return record.finished_at if at is None else float(at)


def templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pretty"] = _pretty
    env.filters["iso"] = iso
    env.filters["when"] = _stats.when
    env.filters["ago"] = _stats.ago
    env.filters["duration"] = _stats.duration
    env.filters["short"] = _short
    env.filters["last_error"] = last_error
    env.filters["last_error_at"] = last_error_at
    return Jinja2Templates(env=env, context_processors=[_root_context])


def _root_context(request: Request) -> dict[str, Any]:
    """`root` in every template: the mount's path, which every link starts with."""
    return {"root": root(request)}


Page = Callable[[Server, Request, Principal], Awaitable[Response]]


def page(
    operation_id: str, role: str = "read", *, scoped: bool = False
) -> Callable[[Page], Callable[[Request], Awaitable[Response]]]:
    """Wrap a page: log in when needed, check the role; forms check their CSRF token. A
    limited token (tenants, no data) is refused unless the page is `scoped` (it applies
    `principal.scope`: offload/server/_scope.py)."""

    def wrap(handler: Page) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            server: Server = request.app.state.offload
            request.scope["offload.operation"] = operation_id
            try:
                principal = server.auth.identify(request)
                if principal is None:
                    target = request.url.path
                    if request.url.query:
                        target += "?" + request.url.query
                    return RedirectResponse(
                        f"{root(request)}/ui/login?next={quote(target)}", status_code=303
                    )
                if not principal.allows(role):
                    raise Problem(
                        "forbidden", f"{principal.name} ({principal.role}) may not do this"
                    )
                if not scoped:
                    refuse_limited(principal.name, principal.scope)
                return await handler(server, request, principal)
            except Exception as exc:  # noqa: BLE001 - every error becomes a problem document
                return error_response(request, to_problem(exc))

        return endpoint

    return wrap


async def read_form(server: Server, request: Request) -> dict[str, str]:
    """A small url-encoded form (an empty body is an empty form)."""
    raw = await read_body(request, 64 * 1024)
    if not raw:
        return {}
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise Problem(
            "unsupported-media-type", "send the form as application/x-www-form-urlencoded"
        )
    try:
        parsed = parse_qs(raw.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise Problem("invalid-parameter", "the form is not UTF-8") from None
    return {k: v[-1] for k, v in parsed.items()}


def check_form(auth: Auth, request: Request, principal: Principal, fields: dict[str, str]) -> None:
    """Every button carries the CSRF token of its page and comes from this origin."""
    if not same_origin(request) or not auth.csrf_ok(principal, fields.get("csrf")):
        raise Problem(
            "cross-origin",
            "this form came from another site or without its CSRF token; reload the page",
        )


def render(
    server: Server,
    request: Request,
    principal: Principal,
    name: str,
    context: dict[str, Any],
    status: int = 200,
) -> Response:
    base = {
        "principal": principal,
        "auth_enabled": server.auth.enabled,
        "csrf": server.auth.csrf_token(principal),
        "nav": NAV,
        "engine": server.app.store.engine,
        "can_admin": principal.allows("admin"),
    }
    return server.templates.TemplateResponse(request, name, {**base, **context}, status_code=status)


def params(server: Server, request: Request, form: bool = False) -> dict[str, Any]:
    """The page's query parameters, checked against its OpenAPI declaration; in a filter
    `form`, empty fields (left at "any") count as absent."""
    declared = server.operations[request.scope["offload.operation"]].get("parameters", [])
    return query_params(request, declared, blank_is_absent=form)


# --- pages -----------------------------------------------------------------------------
@page("dashboardOverview")
async def overview(server: Server, request: Request, principal: Principal) -> Response:
    span = params(server, request).get("range", "1h")
    # One read of the store per period (counts_cache_seconds), however many load the page.
    data = await server.run(
        server.cache.get, ("overview", span), lambda: _stats.overview(server, span)
    )
    return render(server, request, principal, "overview.html", {"page": "overview", **data})


@page("dashboardJobs", scoped=True)
async def jobs_page(server: Server, request: Request, principal: Principal) -> Response:
    q = params(server, request, form=True)
    state, queue, kind = q.get("state"), q.get("queue"), q.get("kind")
    before = int(q["before"]) if "before" in q else None
    limit = 50
    flt = JobFilter(
        states=[state] if state else None, queue=queue, kind=kind, limit=limit, before_id=before
    )
    match = search_of(q)  # a search by argument or error text: _dashboard_bulk.py
    readable = reads_encrypted(principal)
    scope = principal.scope
    if match is not None and match.args_contain is not None and not scope.data:
        raise Problem("forbidden", "this token may not read arguments, nor search them")

    def load() -> dict[str, Any]:
        store = server.app.store
        found = (
            store.job_list(scope.job_filter(flt))
            if match is None
            else store.job_search(match, limit, before)
        )
        return {
            "jobs": [  # secret arguments as ***, encrypted ones as <encrypted> (_http.py);
                # another tenant's jobs never
                scope.shown(shown_record(r, readable))
                for r in found
                if scope.allows_job(r)
            ],
            "queues": []
            if scope.tenants is not None  # counts span tenants: not for a tenant's token
            else sorted({r.queue for r in store.job_counts()}),
            "kinds": [k["name"] for k in kind_rows(server)],
            "now": store.now(),
        }

    data = await server.run(load)
    jobs: list[JobRecord] = data["jobs"]
    filters = {
        "state": state,
        "queue": queue,
        "kind": kind,
        "args": q.get("args"),
        "error": q.get("error"),
    }
    discarded = int(q["discarded"]) if q.get("discarded") else None
    older = None
    if len(jobs) == limit:
        older = f"{root(request)}/ui/jobs?" + urlencode(
            {**{k: v for k, v in filters.items() if v}, "before": jobs[-1].id}
        )
    newest = f"{root(request)}/ui/jobs?" + urlencode({k: v for k, v in filters.items() if v})
    return render(
        server,
        request,
        principal,
        "jobs.html",
        {
            "page": "jobs",
            **data,
            "discarded": discarded,
            "bulk": q.get("bulk"),
            "bulk_count": int(q["count"]) if q.get("count") else 0,
            "retryable": RETRYABLE_STATES,
            "cancellable": CANCELLABLE_STATES,
            "states": STATES,
            "filters": filters,
            "older": older,
            "newest": newest if before else None,
        },
    )


@page("dashboardJob", scoped=True)
async def job_page(server: Server, request: Request, principal: Principal) -> Response:
    done = params(server, request).get("done")
    job_id = path_id(request)

    def load() -> tuple[JobRecord | None, float, list[dict[str, Any]]]:
        store = server.app.store
        found = store.job_get(job_id)
        tree = [] if found is None else _stats.job_tree(store, found)
        return found, store.now(), tree

    record, now, tree = await server.run(load)
    if record is None or not principal.scope.allows_job(record):
        raise Problem("job-not-found", f"job {job_id} does not exist (it may have been pruned)")
    # secret arguments as ***, encrypted ones as <encrypted>
    record = principal.scope.shown(shown_record(record, reads_encrypted(principal)))
    return render(
        server,
        request,
        principal,
        "job.html",
        {
            "page": "jobs",
            "job": record,
            "errors": [error_view(e) for e in record.errors],
            "now": now,
            "timeline": _stats.timeline(record),
            "can_retry": record.state in RETRYABLE_STATES,
            "can_cancel": record.state in CANCELLABLE_STATES
            or (record.state == "running" and record.stop_request != "cancel"),
            "progress": progress_of(record),
            "final": record.state in FINAL_STATES,
            "done": done,
            "tree": tree,  # the jobs its root caused (docs/workflows.md)
            "step": step_of(record.meta),
        },
    )


@page("dashboardQueues")
async def queues_page(server: Server, request: Request, principal: Principal) -> Response:
    queues = await server.run(queue_rows, server)
    paused = await server.run(paused_kinds, server)
    return render(
        server,
        request,
        principal,
        "queues.html",
        {
            "page": "queues",
            "queues": queues,
            "kinds": kind_rows(server, paused),
            "states": STATES,
            "undeclared": server.config.allow_undeclared,
        },
    )


def _encrypts(server: Server, kind: str) -> tuple[str, ...]:
    """The arguments a declared job type encrypts (none for an unknown one)."""
    job_type = server.app.jobs.get(kind)
    return () if job_type is None else job_type.options_.encrypt


@page("dashboardSchedules")
async def schedules_page(server: Server, request: Request, principal: Principal) -> Response:
    readable = reads_encrypted(principal)

    def load() -> dict[str, Any]:
        store = server.app.store
        now = store.now()
        rows = []
        for s in sorted(server.app.schedules.values(), key=lambda s: s.name):
            rows.append(
                {
                    "name": s.name,
                    "cron": s.cron,
                    "job": s.job,
                    "args": s.args if readable else hidden_args(s.args, _encrypts(server, s.job)),
                    "last": store.cron_last_tick(s.name),
                    "next": next_tick(s.cron, now),
                }
            )
        return {"schedules": rows, "now": now}

    data = await server.run(load)
    return render(server, request, principal, "schedules.html", {"page": "schedules", **data})


@page("dashboardWorkers")
async def workers_page(server: Server, request: Request, principal: Principal) -> Response:
    data = await server.run(_stats.workers, server)
    return render(server, request, principal, "workers.html", {"page": "workers", **data})


@page("dashboardEvents")
async def events(server: Server, request: Request, principal: Principal) -> Response:
    """Server-Sent Events telling open pages that what they show has changed (_live.py)."""
    return events_response(request, server)


@page("dashboardRunTime")
async def runtime_page(server: Server, request: Request, principal: Principal) -> Response:
    """Long-running, non-interruptible job types: overruns of max_run_time and event-loop
    blocks by kind, with their owner (docs/run-time.md)."""

    def load() -> dict[str, Any]:
        store = server.app.store
        return {"kinds": store.kind_runtimes(), "now": store.now(), "window": OVERRUN_WINDOW}

    data = await server.run(load)
    return render(server, request, principal, "runtime.html", {"page": "runtime", **data})


# --- buttons ---------------------------------------------------------------------------
async def _act(server: Server, request: Request, principal: Principal, action: str) -> Response:
    fields = await read_form(server, request)
    check_form(server.auth, request, principal, fields)
    job_id = path_id(request)
    store = server.app.store
    record = await server.run(store.job_get, job_id)
    if record is None or not principal.scope.allows_job(record):
        raise Problem("job-not-found", f"job {job_id} does not exist")
    # Cancel asks a running job to stop (an iteration job ends cancelled at its next yield).
    op = store.job_retry if action == "retry" else Job(server.app, job_id).cancel
    if not await server.run(op, job_id) if action == "retry" else not await server.run(op):
        slug = "not-retryable" if action == "retry" else "not-cancellable"
        raise Problem(slug, f"job {job_id} is {record.state}; it cannot be {action}ed now")
    done = "retried" if action == "retry" else "cancelled"
    if action == "cancel" and record.state == "running":
        done = "stop-requested"
    return RedirectResponse(f"{root(request)}/ui/jobs/{job_id}?done={done}", status_code=303)


@page("dashboardRetry", "admin", scoped=True)
async def retry_button(server: Server, request: Request, principal: Principal) -> Response:
    return await _act(server, request, principal, "retry")


@page("dashboardCancel", "admin", scoped=True)
async def cancel_button(server: Server, request: Request, principal: Principal) -> Response:
    return await _act(server, request, principal, "cancel")


@page("dashboardDiscard", "admin", scoped=True)
async def discard_button(server: Server, request: Request, principal: Principal) -> Response:
    """Delete a job (a running one's worker is fenced off), then back to the jobs browser."""
    fields = await read_form(server, request)
    check_form(server.auth, request, principal, fields)
    job_id = path_id(request)
    record = await server.run(server.app.store.job_get, job_id)
    if record is None or not principal.scope.allows_job(record):
        raise Problem("job-not-found", f"job {job_id} does not exist")
    if not await server.run(server.app.store.job_discard, job_id):
        raise Problem("job-not-found", f"job {job_id} does not exist")
    return RedirectResponse(f"{root(request)}/ui/jobs?discarded={job_id}", status_code=303)


# --- login -----------------------------------------------------------------------------
def _next(value: str | None, home: str) -> str:
    """A safe place to go after login: a local path only (else `home`)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return home
    return value[:500]


async def login_form(request: Request) -> Response:
    server: Server = request.app.state.offload
    request.scope["offload.operation"] = "dashboardLoginForm"
    try:
        target = _next(params(server, request).get("next"), f"{root(request)}/")
    except Problem as exc:
        return error_response(request, exc)
    if not server.auth.enabled:
        return RedirectResponse(f"{root(request)}/", status_code=303)
    return _login(server, request, target, None, 200)


def _login(
    server: Server, request: Request, target: str, error: str | None, status: int
) -> Response:
    return server.templates.TemplateResponse(
        request,
        "login.html",
        {"next": target, "error": error, "page": "login"},
        status_code=status,
    )


async def login(request: Request) -> Response:
    server: Server = request.app.state.offload
    try:
        fields = await read_form(server, request)
        if not same_origin(request):
            raise Problem("cross-origin", "log in from this server's own login page")
        if not server.auth.enabled:
            return RedirectResponse(f"{root(request)}/", status_code=303)
        token = server.auth.token_for(fields.get("token", "").strip())
        target = _next(fields.get("next"), f"{root(request)}/")
        if token is None:
            return _login(server, request, target, "That token is not valid here.", 401)
        if target == f"{root(request)}/" and server.auth.scope_of(token).limited:
            target = f"{root(request)}/ui/jobs"  # the overview counts every tenant's jobs
        response = RedirectResponse(target, status_code=303)
        server.auth.set_session(response, request, token)
        return response
    except Exception as exc:  # noqa: BLE001
        return error_response(request, to_problem(exc))


@page("dashboardLogout", scoped=True)  # shows nothing
async def logout(server: Server, request: Request, principal: Principal) -> Response:
    fields = await read_form(server, request)
    check_form(server.auth, request, principal, fields)
    target = "/ui/login" if server.auth.enabled else "/"
    response = RedirectResponse(root(request) + target, status_code=303)
    server.auth.clear_session(response, principal)
    return response


async def problem_page(request: Request) -> Response:
    server: Server = request.app.state.offload
    slug = request.path_params["slug"]
    kind = CATALOGUE.get(slug)
    if kind is None:
        return error_response(request, Problem("not-found", f"no problem type {slug!r}"))
    return server.templates.TemplateResponse(
        request, "problem.html", {"kind": kind, "page": "problem"}
    )


ROUTES = [
    Route("/", overview, methods=["GET"]),
    Route("/ui/jobs", jobs_page, methods=["GET"]),
    Route("/ui/jobs/{job_id:int}", job_page, methods=["GET"]),
    Route("/ui/jobs/{job_id:int}/retry", retry_button, methods=["POST"]),
    Route("/ui/jobs/{job_id:int}/cancel", cancel_button, methods=["POST"]),
    Route("/ui/jobs/{job_id:int}/discard", discard_button, methods=["POST"]),
    Route("/ui/queues", queues_page, methods=["GET"]),
    Route("/ui/schedules", schedules_page, methods=["GET"]),
    Route("/ui/workers", workers_page, methods=["GET"]),
    Route("/ui/events", events, methods=["GET"]),
    Route("/ui/run-time", runtime_page, methods=["GET"]),
    Route("/ui/login", login_form, methods=["GET"]),
    Route("/ui/login", login, methods=["POST"]),
    Route("/ui/logout", logout, methods=["POST"]),
    Route("/problems/{slug}", problem_page, methods=["GET"]),
]
