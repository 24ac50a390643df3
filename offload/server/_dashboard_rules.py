"""The dashboard's page for blackhole rules: list them, add one after a preview of how many
queued jobs it would shed, remove one.

The preview is a plain GET of the page with the form's fields (it works without a script):
the store pages through the jobs waiting to run (`job_queued_page`) and the rule's condition
is matched here, in the one `where` language of dispatch/_rules.py, over at most
`PREVIEW_SCAN` jobs. Adding and removing go through `app.rules`, as the REST API and
`offload rules` do, behind the admin role and the page's CSRF token.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from offload._errors import ConfigurationError
from offload.dispatch._rules import Subject, parse_where
from offload.server._auth import Principal
from offload.server._context import Server
from offload.server._dashboard import check_form, page, params, read_form, render
from offload.server._http import path_id
from offload.server._pages import root
from offload.server._problems import Problem
from offload.server._rules_api import MAX_EXPIRY
from offload.server._stats import duration
from offload.store._contract import Store

PREVIEW_SCAN = 20_000  # queued jobs a preview looks at, at most
PAGE = 1000  # jobs read per store call while previewing


def preview(store: Store, kind: str | None, where: str | None) -> dict[str, Any]:
    """How many jobs waiting to run a rule of `kind` meeting `where` would shed now:
    `{"matched": n, "scanned": n, "complete": bool}`; a bad `where` raises InvalidRuleError."""
    condition = parse_where(where)
    matched = scanned = 0
    after = 0
    while scanned < PREVIEW_SCAN:
        batch = store.job_queued_page(kind, after, min(PAGE, PREVIEW_SCAN - scanned))
        for job in batch:
            subject = Subject(job.kind, job.queue, job.tenant, job.args, job.meta)
            matched += bool(condition.matches(subject))
        scanned += len(batch)
        if len(batch) < PAGE:
            return {"matched": matched, "scanned": scanned, "complete": True}
        after = batch[-1].id
    return {"matched": matched, "scanned": scanned, "complete": False}


def _form_values(q: dict[str, Any]) -> dict[str, str]:
    return {name: str(q.get(name) or "") for name in ("kind", "where", "reason", "expires_in")}


@page("dashboardRules")
async def rules_page(server: Server, request: Request, principal: Principal) -> Response:
    q = params(server, request, form=True)
    form = _form_values(q)
    outcome: dict[str, Any] | None = None
    error: str | None = None
    if q.get("preview"):
        kind = form["kind"].strip() or None
        try:
            outcome = await server.run(preview, server.app.store, kind, form["where"] or None)
        except ConfigurationError as exc:  # InvalidRuleError: the message says where
            error = str(exc)

    def load() -> dict[str, Any]:
        store = server.app.store
        return {"rules": store.rule_list(include_expired=True), "now": store.now()}

    data = await server.run(load)
    return render(
        server,
        request,
        principal,
        "rules.html",
        {
            "page": "rules",
            **data,
            "form": form,
            "preview": outcome,
            "error": error,
            "scan_limit": PREVIEW_SCAN,
            "added": q.get("added"),
            "removed": q.get("removed"),
        },
    )


def _expires(text: str) -> float | None:
    if not text.strip():
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= MAX_EXPIRY:
        raise Problem(
            "invalid-rule",
            f"expires in {text!r}: give a number of seconds above 0, at most "
            f"{duration(MAX_EXPIRY)}, or leave it empty for a rule that does not expire",
        )
    return seconds


@page("dashboardAddRule", "admin")
async def add_rule(server: Server, request: Request, principal: Principal) -> Response:
    fields = await read_form(server, request)
    check_form(server.auth, request, principal, fields)
    expires = _expires(fields.get("expires_in", ""))
    kind = fields.get("kind", "").strip() or None
    where = fields.get("where", "").strip() or None

    def add() -> int:
        rule = server.app.rules.add(
            kind=kind, where=where, expires=expires, reason=fields.get("reason", "")
        )
        return rule.id

    try:
        rule_id = await server.run(add)
    except ConfigurationError as exc:
        raise Problem("invalid-rule", str(exc)) from None
    return RedirectResponse(f"{root(request)}/ui/rules?added={rule_id}", status_code=303)


@page("dashboardRemoveRule", "admin")
async def remove_rule(server: Server, request: Request, principal: Principal) -> Response:
    fields = await read_form(server, request)
    check_form(server.auth, request, principal, fields)
    rule_id = path_id(request, "rule_id")
    if not await server.run(server.app.rules.remove, rule_id):
        raise Problem("rule-not-found", f"there is no rule {rule_id}", rule_id=rule_id)
    return RedirectResponse(f"{root(request)}/ui/rules?removed={rule_id}", status_code=303)


ROUTES = [
    Route("/ui/rules", rules_page, methods=["GET"]),
    Route("/ui/rules", add_rule, methods=["POST"]),
    Route("/ui/rules/{rule_id:int}/remove", remove_rule, methods=["POST"]),
]
