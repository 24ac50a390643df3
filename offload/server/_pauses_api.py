"""REST resources for paused queues and kinds: list, pause and resume them at run time.

`PUT /queues/{name}/pause` and `PUT /kinds/{name}/pause` pause (admin), `DELETE` on the same
resumes (admin), `GET /pauses` lists every pause (read). They call the store's pauses family
(offload/store/_pauses.py), as `offload queues …` and `offload kinds …` do: a paused queue or
kind keeps its jobs queued, and every worker leaves it out of its claims within a second.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from offload.server._config import NAME_PATTERN
from offload.server._context import Call, api
from offload.server._http import iso, json_response, read_json
from offload.server._problems import Problem
from offload.server._spec import (
    NAME,
    TIME,
    Spec,
    json_request,
    ok,
    problem,
    standard_errors,
)
from offload.store._pauses import KIND, MAX_REASON, QUEUE, Pause, PauseAdded

_NAME = re.compile(NAME_PATTERN)
PAUSE_BODY: Spec = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "reason": {
            "type": "string",
            "maxLength": MAX_REASON,
            "description": "Why; shown with the pause.",
        },
    },
}
PAUSE_PROPERTIES: Spec = {
    "scope": {"type": "string", "enum": [QUEUE, KIND]},
    "name": {"type": "string"},
    "paused_by": {"type": "string", "description": "The token's name ('' when unknown)."},
    "paused_at": TIME,
    "reason": {"type": "string"},
}
COMPONENTS: Spec = {
    "Pause": {
        "type": "object",
        "required": list(PAUSE_PROPERTIES),
        "properties": PAUSE_PROPERTIES,
    },
    "PauseAdded": {
        "type": "object",
        "required": [*PAUSE_PROPERTIES, "new", "stopping"],
        "properties": {
            **PAUSE_PROPERTIES,
            "new": {"type": "boolean", "description": "False: it was paused already, as shown."},
            "stopping": {
                "type": "integer",
                "description": "Running jobs asked to stop (iteration jobs stop at their next "
                "yield and are put back; others finish).",
            },
        },
    },
    "PauseList": {
        "type": "object",
        "required": ["pauses"],
        "properties": {
            "pauses": {"type": "array", "items": {"$ref": "#/components/schemas/Pause"}},
        },
    },
}


def pause_resource(p: Pause) -> dict[str, Any]:
    """The JSON form of a pause."""
    return {
        "scope": p.scope,
        "name": p.name,
        "paused_by": p.paused_by,
        "paused_at": iso(p.paused_at),
        "reason": p.reason,
    }


def _name(call: Call) -> str:
    name = str(call.request.path_params["name"])
    if not _NAME.match(name):
        raise Problem("invalid-parameter", f"name {name!r} does not match {NAME_PATTERN}")
    return name


def _scope(call: Call) -> str:
    """'queue' or 'kind', from the route's path (`/queues/{name}/pause` or `/kinds/…`)."""
    return QUEUE if call.request.url.path.rstrip("/").split("/")[-3] == "queues" else KIND


@api("listPauses", "read")
async def list_pauses(call: Call) -> Response:
    found = await call.server.run(call.app.store.pause_list)
    return json_response({"pauses": [pause_resource(p) for p in found]})


async def _pause(call: Call) -> Response:
    scope, name = _scope(call), _name(call)
    body = await read_json(call.request, call.server.max_body, PAUSE_BODY)
    added: PauseAdded = await call.server.run(
        call.app.store.pause_add, scope, name, call.principal.name or "", body.get("reason", "")
    )
    out = {**pause_resource(added.pause), "new": added.new, "stopping": added.stopping}
    return json_response(out, 201 if added.new else 200)


async def _resume(call: Call) -> Response:
    scope, name = _scope(call), _name(call)
    if not await call.server.run(call.app.store.pause_remove, scope, name):
        raise Problem("not-paused", f"{scope} {name} is not paused", scope=scope, name=name)
    return Response(status_code=204)


pause_queue = api("pauseQueue", "admin")(_pause)
pause_kind = api("pauseKind", "admin")(_pause)
resume_queue = api("resumeQueue", "admin")(_resume)
resume_kind = api("resumeKind", "admin")(_resume)


def operations() -> dict[tuple[str, str], Spec]:
    out: dict[tuple[str, str], Spec] = {
        ("/pauses", "get"): {
            "operationId": "listPauses",
            "summary": "Paused queues and kinds, by scope then name",
            "tags": ["pauses"],
            "responses": {"200": ok("The pauses", "PauseList"), **standard_errors()},
        },
    }
    for scope, plural in ((QUEUE, "queues"), (KIND, "kinds")):
        title = scope.capitalize()
        path = f"/{plural}/{{name}}/pause"
        param = {
            "name": "name",
            "in": "path",
            "required": True,
            "schema": NAME,
            "description": f"The {scope}'s name",
        }
        out[(path, "put")] = {
            "operationId": f"pause{title}",
            "summary": f"Pause a {scope}: its jobs stay queued and are not claimed",
            "tags": ["pauses"],
            "parameters": [param],
            "requestBody": json_request(PAUSE_BODY, required=False),
            "responses": {
                "200": ok("It was paused already (unchanged)", "PauseAdded"),
                "201": ok("Paused now", "PauseAdded"),
                **standard_errors(body=True),
            },
        }
        out[(path, "delete")] = {
            "operationId": f"resume{title}",
            "summary": f"Resume a {scope}: workers claim its jobs again within a second",
            "tags": ["pauses"],
            "parameters": [param],
            "responses": {
                "204": {"description": "Resumed"},
                "404": problem(f"The {scope} is not paused"),
                **standard_errors(params=True),
            },
        }
    return out


ROUTES = [
    Route("/pauses", list_pauses, methods=["GET"]),
    Route("/queues/{name}/pause", pause_queue, methods=["PUT"]),
    Route("/queues/{name}/pause", resume_queue, methods=["DELETE"]),
    Route("/kinds/{name}/pause", pause_kind, methods=["PUT"]),
    Route("/kinds/{name}/pause", resume_kind, methods=["DELETE"]),
]
