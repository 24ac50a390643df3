"""The dashboard's pause and resume buttons for queues and kinds (forms, admin role).

Each button posts its page's CSRF token and the page to go back to; the store's pauses family
does the work, as `offload queues pause` and the API do.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from offload.server._auth import Principal
from offload.server._config import NAME_PATTERN
from offload.server._context import Server
from offload.server._dashboard import check_form, page, read_form
from offload.server._pages import root
from offload.server._problems import Problem
from offload.server._spec import NAME, Spec
from offload.store._pauses import KIND, QUEUE

_NAME = re.compile(NAME_PATTERN)
_BACK = re.compile(r"^/(ui/[a-z]+)?$")  # the overview or a dashboard list page


def _back(value: str | None) -> str:
    """Where to go after the button: the page it was on when that is a dashboard page."""
    return value if value and _BACK.match(value) else "/ui/queues"


async def _act(
    server: Server, request: Request, principal: Principal, scope: str, resume: bool
) -> Response:
    fields = await read_form(server, request)
    check_form(server.auth, request, principal, fields)
    name = str(request.path_params["name"])
    if not _NAME.match(name):
        raise Problem("invalid-parameter", f"name {name!r} does not match {NAME_PATTERN}")
    store = server.app.store
    if resume:
        await server.run(store.pause_remove, scope, name)
    else:
        await server.run(store.pause_add, scope, name, principal.name or "", "")
    return RedirectResponse(root(request) + _back(fields.get("next")), status_code=303)


@page("dashboardPauseQueue", "admin")
async def pause_queue(server: Server, request: Request, principal: Principal) -> Response:
    return await _act(server, request, principal, QUEUE, resume=False)


@page("dashboardResumeQueue", "admin")
async def resume_queue(server: Server, request: Request, principal: Principal) -> Response:
    return await _act(server, request, principal, QUEUE, resume=True)


@page("dashboardPauseKind", "admin")
async def pause_kind(server: Server, request: Request, principal: Principal) -> Response:
    return await _act(server, request, principal, KIND, resume=False)


@page("dashboardResumeKind", "admin")
async def resume_kind(server: Server, request: Request, principal: Principal) -> Response:
    return await _act(server, request, principal, KIND, resume=True)


def operations() -> dict[tuple[str, str], Spec]:
    from offload.server._openapi import _form  # the document imports this module

    fields = {"csrf": {"type": "string"}, "next": {"type": "string"}}
    out: dict[tuple[str, str], Spec] = {}
    for scope, plural in ((QUEUE, "queues"), (KIND, "kinds")):
        title = scope.capitalize()
        param = {"name": "name", "in": "path", "required": True, "schema": NAME}
        for action in ("pause", "resume"):
            op = f"dashboard{action.capitalize()}{title}"
            summary = f"{action.capitalize()} a {scope} (button)"
            out[(f"/ui/{plural}/{{name}}/{action}", "post")] = {
                **_form(op, summary, fields, ["csrf"]),
                "parameters": [param],
            }
    return out


ROUTES = [
    Route("/ui/queues/{name}/pause", pause_queue, methods=["POST"]),
    Route("/ui/queues/{name}/resume", resume_queue, methods=["POST"]),
    Route("/ui/kinds/{name}/pause", pause_kind, methods=["POST"]),
    Route("/ui/kinds/{name}/resume", resume_kind, methods=["POST"]),
]
