"""The dashboard's search of the jobs page and its bulk retry, cancel and discard.

The jobs page filters by state, queue, kind, a piece of the arguments and a piece of the last
error. Under a filter it offers to retry, cancel or discard every job the filter matches: a
button leads to a confirmation page that counts them and shows the first few, and only its
form (a POST with the page's CSRF token, from an admin) acts, in the store's bounded batches.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from offload._states import STATES
from offload.server._auth import Principal
from offload.server._bulk import (
    FILTERS,
    NAME_OR_BLANK,
    PAST,
    TEXT_OR_BLANK,
    match_of,
    query_of,
)
from offload.server._context import Server
from offload.server._dashboard import check_form, page, params, read_form, render
from offload.server._pages import root
from offload.server._problems import Problem
from offload.server._spec import Spec, problem, query
from offload.store._bulk import APPLIES_TO, BULK_ACTIONS, MAX_TEXT, JobMatch
from offload.store._contract import JobRecord

PREVIEW = 10  # jobs shown on the confirmation page


def _form_filter(fields: dict[str, str]) -> dict[str, str]:
    """The filter a bulk form sends, checked as the jobs page checks its query."""
    out = {name: fields.get(name, "") for name in FILTERS}
    if out["state"] and out["state"] not in STATES:
        raise Problem("invalid-parameter", f"unknown job state {out['state']!r}")
    for name in FILTERS:
        if len(out[name]) > MAX_TEXT:
            raise Problem("invalid-parameter", f"{name} is longer than {MAX_TEXT} characters")
    return out


def _action(value: Any) -> str:
    if value not in BULK_ACTIONS:
        raise Problem("invalid-parameter", f"action must be one of {', '.join(BULK_ACTIONS)}")
    return str(value)


@page("dashboardBulkConfirm", "admin")
async def confirm_page(server: Server, request: Request, principal: Principal) -> Response:
    """Count what a bulk action would change and ask before doing it."""
    q = params(server, request, form=True)
    action = _action(q.get("action"))
    filters = {name: q.get(name, "") for name in FILTERS}
    match = match_of(filters)
    acting = match.states_for(action)

    def load() -> tuple[int, list[JobRecord], float]:
        store = server.app.store
        if match.empty:  # the page says to choose a filter first
            return 0, [], store.now()
        count = store.job_bulk(action, match, dry_run=True).count
        sample: list[JobRecord] = []
        if count and acting:
            sample = store.job_search(replace(match, states=tuple(acting)), PREVIEW)
        return count, sample, store.now()

    count, sample, now = await server.run(load)
    return render(
        server,
        request,
        principal,
        "jobs_bulk.html",
        {
            "page": "jobs",
            "action": action,
            "past": PAST[action],
            "count": count,
            "sample": sample,
            "now": now,
            "filters": filters,
            "applies_to": APPLIES_TO[action],
            "unfiltered": match.empty,
            "back": root(request) + "/ui/jobs?" + query_of(filters),
        },
    )


@page("dashboardBulk", "admin")
async def bulk_button(server: Server, request: Request, principal: Principal) -> Response:
    """Do the bulk action confirmed on its page, then back to the jobs page, which says how
    many jobs it changed."""
    fields = await read_form(server, request)
    check_form(server.auth, request, principal, fields)
    action = _action(fields.get("action"))
    filters = _form_filter(fields)
    match = match_of(filters)
    if match.empty:
        raise Problem("invalid-parameter", "choose a filter first: bulk actions need one")
    result = await server.run(_bulk, server, action, match)
    target = root(request) + "/ui/jobs?" + query_of(filters, bulk=PAST[action], count=result)
    return RedirectResponse(target, status_code=303)


def _bulk(server: Server, action: str, match: JobMatch) -> int:
    return server.app.store.job_bulk(action, match).count


def operations() -> dict[tuple[str, str], Spec]:
    """The OpenAPI operations of these pages."""
    blank = {"type": "string", "enum": ["", *STATES]}
    filters = [
        query("state", blank, "Only jobs in this state."),
        query("queue", NAME_OR_BLANK, "Only jobs of this queue."),
        query("kind", NAME_OR_BLANK, "Only jobs of this kind."),
        query("args", TEXT_OR_BLANK, "Only jobs whose arguments' JSON contains this."),
        query("error", TEXT_OR_BLANK, "Only jobs whose last error contains this."),
    ]
    action = {"type": "string", "enum": list(BULK_ACTIONS)}
    responses = {
        "400": problem("A malformed parameter or form, or no filter"),
        "403": problem("A missing CSRF token, a cross-origin form, or a role below admin"),
        "503": problem("The store is busy or unavailable"),
    }
    form_fields: Spec = {
        "csrf": {"type": "string"},
        "action": action,
        **{name: {"type": "string"} for name in FILTERS},
    }
    return {
        ("/ui/jobs/bulk", "get"): {
            "operationId": "dashboardBulkConfirm",
            "summary": "Confirm a bulk retry, cancel or discard: the count and the first jobs",
            "tags": ["dashboard"],
            "parameters": [
                {**query("action", action, "What to do to them."), "required": True},
                *filters,
            ],
            "responses": {
                "200": {
                    "description": "The page",
                    "content": {"text/html": {"schema": {"type": "string"}}},
                },
                "303": {"description": "Not logged in: to the login page"},
                **responses,
            },
        },
        ("/ui/jobs/bulk", "post"): {
            "operationId": "dashboardBulk",
            "summary": "Retry, cancel or discard every job a filter matches (confirmed)",
            "tags": ["dashboard"],
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "properties": form_fields,
                            "required": ["csrf", "action"],
                        }
                    }
                },
            },
            "responses": {
                "303": {"description": "Done: back to the jobs page, with the count"},
                "413": problem("The form is too large"),
                "415": problem("Not a form"),
                **responses,
            },
        },
    }


ROUTES = [
    Route("/ui/jobs/bulk", confirm_page, methods=["GET"]),
    Route("/ui/jobs/bulk", bulk_button, methods=["POST"]),
]
