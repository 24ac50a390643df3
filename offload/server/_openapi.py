"""The OpenAPI 3.0 document: every route of the server, built from the same schemas that the
endpoints check requests against, for this server's configuration (its kinds, its bounds,
whether it has tokens)."""

from __future__ import annotations

from typing import Any

import offload
from offload._states import STATES
from offload.server import (
    _dashboard_bulk,
    _job_events,
    _jobs_spec,
    _pauses_api,
    _pauses_ui,
    _rules_api,
    _topics_api,
    _topics_ui,
    _worker_api,
    _workflows_api,
    _workflows_ui,
)
from offload.server._bulk import filter_params
from offload.server._context import Server
from offload.server._problems import CATALOGUE
from offload.server._spec import (
    COMPONENTS,
    JOB_ID_PATH,
    Spec,
    ok,
    problem,
    query,
    standard_errors,
)
from offload.server._stats import RANGES

HTML: Spec = {"text/html": {"schema": {"type": "string"}}}


def _page(operation_id: str, summary: str, parameters: list[Spec] | None = None) -> Spec:
    return {
        "operationId": operation_id,
        "summary": summary,
        "tags": ["dashboard"],
        "parameters": parameters or [],
        "responses": {
            "200": {"description": "The page", "content": HTML},
            "303": {"description": "Not logged in: to the login page"},
            "400": problem("A malformed parameter"),
            "403": problem("The token's role does not allow this"),
            "404": problem("No such job"),
            "503": problem("The store is busy or unavailable"),
        },
    }


def _form(operation_id: str, summary: str, fields: dict[str, Spec], required: list[str]) -> Spec:
    return {
        "operationId": operation_id,
        "summary": summary,
        "tags": ["dashboard"],
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "properties": fields, "required": required}
                }
            },
        },
        "responses": {
            "303": {"description": "Done: back to a page"},
            "200": {"description": "The form again, with an error", "content": HTML},
            "400": problem("A malformed form"),
            "401": {"description": "Wrong token", "content": HTML},
            "403": problem("A missing CSRF token, a cross-origin form, or a read-only role"),
            "404": problem("No such job"),
            "409": problem("The job cannot be retried or cancelled now"),
            "413": problem("The form is too large"),
            "415": problem("Not a form"),
            "503": problem("The store is busy or unavailable"),
        },
    }


def _with_response(operation: Spec, status: str, response: Spec) -> Spec:
    return {**operation, "responses": {**operation["responses"], status: response}}


def dashboard_operations() -> dict[tuple[str, str], Spec]:
    csrf = {"csrf": {"type": "string"}}
    # a filter form sends empty fields for "any"
    optional_name = {"type": "string", "pattern": "^([A-Za-z0-9_.:-]{1,128})?$"}
    jobs_params = [
        query("state", {"type": "string", "enum": ["", *STATES]}, "Only jobs in this state."),
        query("queue", optional_name, "Only jobs of this queue."),
        query("kind", optional_name, "Only jobs of this kind."),
        query("before", {"type": "string", "pattern": "^[0-9]{0,18}$"}, "Older than this id."),
        query(
            "discarded",
            {"type": "string", "pattern": "^[0-9]{0,18}$"},
            "Confirms that this job was just discarded.",
        ),
        *filter_params(),
    ]
    ranges = {"type": "string", "enum": list(RANGES)}
    done = {"type": "string", "enum": ["retried", "cancelled", "stop-requested"]}
    return {
        ("/", "get"): _page(
            "dashboardOverview",
            "Overview: throughput, failures, depth per queue",
            [query("range", ranges, "The time range of the chart (1h).")],
        ),
        ("/ui/jobs", "get"): _page("dashboardJobs", "Jobs browser with filters", jobs_params),
        ("/ui/jobs/{job_id}", "get"): _page(
            "dashboardJob",
            "One job",
            [JOB_ID_PATH, query("done", done, "Confirms an action just done.")],
        ),
        ("/ui/queues", "get"): _page("dashboardQueues", "Queues and job kinds"),
        ("/ui/schedules", "get"): _page("dashboardSchedules", "Cron schedules with next run"),
        ("/ui/workers", "get"): _page("dashboardWorkers", "Workers alive and what they run"),
        ("/ui/run-time", "get"): _page(
            "dashboardRunTime", "Long-running, non-interruptible job types and their owners"
        ),
        ("/ui/events", "get"): {
            **_page("dashboardEvents", "Server-Sent Events: `change` when the pages would differ"),
            "responses": {
                "200": {
                    "description": "An event stream (`ready`, then `change` events)",
                    "content": {
                        "text/event-stream": {
                            "schema": {
                                "type": "object",
                                "required": ["event", "data"],
                                "properties": {
                                    "event": {"type": "string", "enum": ["ready", "change"]},
                                    "data": {"type": "string", "description": "A version"},
                                    "retry": {"type": "integer"},
                                },
                            }
                        }
                    },
                },
                "303": {"description": "Not logged in: to the login page"},
                "403": problem("The token's role does not allow this"),
            },
        },
        ("/ui/rules", "get"): _page(
            "dashboardRules",
            "Blackhole rules, and a preview of what a new one would shed",
            [
                query("kind", {"type": "string", "maxLength": 200}, "A new rule's kind."),
                query("where", {"type": "string", "maxLength": 2000}, "A new rule's condition."),
                query("reason", {"type": "string", "maxLength": 500}, "A new rule's reason."),
                query("expires_in", {"type": "string", "maxLength": 20}, "Seconds it applies."),
                query("preview", {"type": "string", "enum": ["", "1"]}, "Count what it matches."),
                query("added", {"type": "string", "pattern": "^[0-9]{0,18}$"}, "A rule added."),
                query("removed", {"type": "string", "pattern": "^[0-9]{0,18}$"}, "A rule gone."),
            ],
        ),
        ("/ui/rules", "post"): _with_response(
            _form(
                "dashboardAddRule",
                "Add a blackhole rule (button)",
                {
                    "csrf": {"type": "string"},
                    "kind": {"type": "string"},
                    "where": {"type": "string"},
                    "reason": {"type": "string"},
                    "expires_in": {"type": "string"},
                },
                ["csrf"],
            ),
            "422",
            problem("The rule is not valid (its where expression, kind or expiry)"),
        ),
        ("/ui/rules/{rule_id}/remove", "post"): {
            **_form("dashboardRemoveRule", "Remove a blackhole rule (button)", csrf, ["csrf"]),
            "parameters": [_rules_api.RULE_ID_PATH],
        },
        ("/ui/login", "get"): _page(
            "dashboardLoginForm",
            "The login form",
            [query("next", {"type": "string", "maxLength": 500}, "Where to go after login.")],
        ),
        ("/ui/login", "post"): _form(
            "dashboardLogin",
            "Log in with a token (sets an HttpOnly session cookie)",
            {"token": {"type": "string"}, "next": {"type": "string"}},
            ["token"],
        ),
        ("/ui/logout", "post"): _form("dashboardLogout", "Log out", csrf, ["csrf"]),
        ("/ui/jobs/{job_id}/retry", "post"): {
            **_form("dashboardRetry", "Retry a job (button)", csrf, ["csrf"]),
            "parameters": [JOB_ID_PATH],
        },
        ("/ui/jobs/{job_id}/cancel", "post"): {
            **_form("dashboardCancel", "Cancel a job (button)", csrf, ["csrf"]),
            "parameters": [JOB_ID_PATH],
        },
        ("/ui/jobs/{job_id}/discard", "post"): {
            **_form("dashboardDiscard", "Discard (delete) a job (button)", csrf, ["csrf"]),
            "parameters": [JOB_ID_PATH],
        },
    }


def misc_operations() -> dict[tuple[str, str], Spec]:
    return {
        ("/openapi.json", "get"): {
            "operationId": "openapi",
            "summary": "This document",
            "tags": ["meta"],
            "security": [],
            "responses": {
                "200": {
                    "description": "OpenAPI 3.0",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        },
        ("/healthz", "get"): {
            "operationId": "health",
            "summary": "Liveness and store reachability (no job data)",
            "tags": ["meta"],
            "security": [],
            "responses": {
                "200": ok("The server and its store answer", "Health"),
                "503": problem("The store does not answer"),
            },
        },
        ("/metrics", "get"): {
            "operationId": "metrics",
            "summary": "Prometheus metrics",
            "tags": ["meta"],
            "responses": {
                "200": {
                    "description": "Prometheus text format 0.0.4",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                **standard_errors(),
            },
        },
        ("/problems/{slug}", "get"): {
            "operationId": "problemType",
            "summary": "What a problem type means",
            "tags": ["meta"],
            "security": [],
            "parameters": [
                {
                    "name": "slug",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "enum": sorted(CATALOGUE)},
                }
            ],
            "responses": {
                "200": {"description": "A short page", "content": HTML},
                "404": problem("No such problem type"),
            },
        },
    }


def build(server: Server) -> dict[str, Any]:
    """The document for this server, and each operation recorded by id on the server."""
    operations: dict[tuple[str, str], Spec] = {}
    operations.update(_jobs_spec.operations(server))
    operations.update(_job_events.operations())
    operations.update(_rules_api.operations())
    operations.update(_pauses_api.operations())
    operations.update(_topics_api.operations())
    operations.update(_worker_api.operations(server))
    operations.update(misc_operations())
    operations.update(dashboard_operations())
    operations.update(_dashboard_bulk.operations())
    operations.update(_pauses_ui.operations())
    operations.update(_topics_ui.operations())
    operations.update(_workflows_api.operations())
    operations.update(_workflows_ui.operations())
    paths: dict[str, dict[str, Any]] = {}
    for (path, method), op in operations.items():
        paths.setdefault(path, {})[method] = op
        server.operations[op["operationId"]] = op
    doc: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {
            "title": "offload",
            "version": offload.__version__,
            "description": "Background jobs over HTTP: enqueue and watch jobs, run them from "
            "workers in any language, operate them. Errors are RFC 9457 problem details.",
        },
        "paths": paths,
        "components": {
            "schemas": {
                **COMPONENTS,
                **_rules_api.COMPONENTS,
                **_pauses_api.COMPONENTS,
                **_topics_api.COMPONENTS,
                **_workflows_api.COMPONENTS,
            }
        },
        "tags": [
            {"name": "jobs", "description": "Jobs as REST resources"},
            {"name": "rules", "description": "Blackhole rules: shed matching jobs"},
            {"name": "pauses", "description": "Paused queues and kinds: not claimed"},
            {"name": "topics", "description": "Events: publish, read, consumer groups, replay"},
            {"name": "workflows", "description": "Chains, groups, graphs and sagas of jobs"},
            {"name": "worker", "description": "The worker protocol (any language)"},
            {"name": "meta", "description": "Health, metrics, this document"},
            {"name": "dashboard", "description": "Server-rendered pages for people"},
        ],
    }
    if server.auth.enabled:
        doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        doc["security"] = [{"bearer": []}]
        for methods in paths.values():
            for op in methods.values():
                if op["operationId"] in ("dashboardLoginForm", "dashboardLogin"):
                    op["security"] = []
                elif op.get("tags") == ["dashboard"]:
                    op["security"] = [{"bearer": []}, {"session": []}]
        doc["components"]["securitySchemes"]["session"] = {
            "type": "apiKey",
            "in": "cookie",
            "name": "offload_session",
        }
    else:
        for methods in paths.values():
            for op in methods.values():
                op.pop("security", None)
                for code in ("401",):
                    op["responses"].pop(code, None)
    return doc
