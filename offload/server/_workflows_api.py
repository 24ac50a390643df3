"""REST resources for workflows (docs/workflows.md): create chains, groups, graphs and sagas of
declared job types, read them with their steps, list them and cancel them.

`POST /workflows` (enqueue role) builds the workflow through the app's own builders (`app.chain`,
`app.group`, `app.workflow`, `app.saga`), so its jobs are checked as a Python producer's are;
`GET /workflows` and `GET /workflows/{id}` read (read role); `POST /workflows/{id}/cancel`
cancels (admin role).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from offload._errors import (
    ConfigurationError,
    InvalidArgumentsError,
    PayloadTooLargeError,
    UnknownJobError,
)
from offload.app._workflows import WorkflowHandle
from offload.jobs._step import Step
from offload.jobs._type import PreparedJob
from offload.server._context import Call, Server, api
from offload.server._http import iso, json_response, path_id, query_params, read_json
from offload.server._links import link
from offload.server._problems import Problem
from offload.server._spec import (
    JOB_ID,
    NULLABLE_TIME,
    TIME,
    Spec,
    json_request,
    ok,
    problem,
    query,
    standard_errors,
)
from offload.store._workflows import KINDS, WORKFLOW_STATES, WorkflowFilter, WorkflowRecord

_OPTIONS = ("queue", "priority", "max_attempts", "timeout", "meta")
JOB: Spec = {
    "type": "object",
    "required": ["kind"],
    "properties": {
        "kind": {"type": "string", "description": "A job type the application declares."},
        "args": {"type": "object", "description": "Its arguments by name."},
        "queue": {"type": "string"},
        "priority": {"type": "integer", "minimum": -1000, "maximum": 1000},
        "max_attempts": {"type": "integer", "minimum": 1},
        "timeout": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
        "meta": {"type": "object"},
    },
}
STEP: Spec = {
    **JOB,
    "properties": {
        **JOB["properties"],
        "name": {
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            "description": "The step's name (a graph's steps need one; default: the kind).",
        },
        "depends_on": {
            "type": "array",
            "items": {"type": "string"},
            "description": "A graph step's dependencies, by name.",
        },
        "undo": {**JOB, "description": "A saga step's undo job."},
    },
}
CREATE_BODY: Spec = {
    "type": "object",
    "required": ["kind", "steps"],
    "additionalProperties": False,
    "properties": {
        "kind": {"type": "string", "enum": list(KINDS)},
        "name": {"type": "string", "maxLength": 200},
        "steps": {"type": "array", "minItems": 1, "maxItems": 1000, "items": STEP},
        "then": {**JOB, "description": "A group's callback, once every member completed."},
        "on_failure": {**JOB, "description": "Once, when a step ends dead or cancelled."},
    },
}
STEP_PROPERTIES: Spec = {
    "name": {"type": "string"},
    "role": {"type": "string", "enum": ["step", "on_failure", "undo"]},
    "kind": {"type": "string"},
    "depends_on": {"type": "array", "items": {"type": "string"}},
    "undo_of": {"type": "string", "nullable": True},
    "state": {
        "type": "string",
        "description": "pending (no job yet), created (its job has not ended), or the state "
        "its job ended in: completed, dead, cancelled, shed.",
    },
    "job_id": {**JOB_ID, "nullable": True},
    "result": {"nullable": True, "description": "Its job's result, once completed."},
}
WORKFLOW_PROPERTIES: Spec = {
    "id": JOB_ID,
    "kind": {"type": "string", "enum": list(KINDS)},
    "name": {"type": "string", "nullable": True},
    "state": {"type": "string", "enum": list(WORKFLOW_STATES)},
    "inserted_at": TIME,
    "finished_at": NULLABLE_TIME,
    "steps": {
        "type": "array",
        "items": {
            "type": "object",
            "required": list(STEP_PROPERTIES),
            "properties": STEP_PROPERTIES,
        },
    },
    "links": {"type": "object", "properties": {"self": {"type": "string"}}},
}
COMPONENTS: Spec = {
    "Workflow": {
        "type": "object",
        "required": ["id", "kind", "name", "state", "inserted_at", "finished_at", "links"],
        "properties": WORKFLOW_PROPERTIES,
    },
    "WorkflowList": {
        "type": "object",
        "required": ["workflows"],
        "properties": {
            "workflows": {"type": "array", "items": {"$ref": "#/components/schemas/Workflow"}}
        },
    },
}
WORKFLOW_ID_PATH: Spec = {
    "name": "workflow_id",
    "in": "path",
    "required": True,
    "schema": JOB_ID,
    "description": "The workflow's id",
}


def workflow_resource(r: WorkflowRecord, with_steps: bool = True) -> dict[str, Any]:
    """The JSON form of a workflow (with its steps when read one at a time)."""
    out: dict[str, Any] = {
        "id": r.id,
        "kind": r.kind,
        "name": r.name,
        "state": r.state,
        "inserted_at": iso(r.inserted_at),
        "finished_at": iso(r.finished_at),
        "links": {"self": link(f"/workflows/{r.id}")},
    }
    if with_steps:
        out["steps"] = [
            {
                "name": s.name,
                "role": s.role,
                "kind": s.kind,
                "depends_on": list(s.depends_on),
                "undo_of": s.undo_of,
                "state": s.state,
                "job_id": s.job_id,
                "result": s.result if s.state == "completed" else None,
            }
            for s in r.steps
        ]
    return out


def _job(server: Server, spec: dict[str, Any]) -> PreparedJob:
    options = {k: spec[k] for k in _OPTIONS if k in spec}
    return server.app.call(spec["kind"], **options).prepare_named(spec.get("args", {}))


def _create(server: Server, body: dict[str, Any]) -> int:
    app, kind = server.app, body["kind"]
    steps: list[dict[str, Any]] = body["steps"]
    name = body.get("name")
    jobs = [_job(server, s) for s in steps]
    then = _job(server, body["then"]) if "then" in body else None
    failure = _job(server, body["on_failure"]) if "on_failure" in body else None
    if kind != "group" and then is not None:
        raise ConfigurationError("then is a group's callback; give the step in steps")
    if kind == "chain":
        return app.chain(*jobs, name=name).enqueue().id
    if kind == "group":
        return app.group(jobs, then=then, on_failure=failure, name=name).enqueue().id
    if kind == "saga":
        saga = [
            Step(j, None if "undo" not in s else _job(server, s["undo"]), s.get("name"))
            for j, s in zip(jobs, steps, strict=True)
        ]
        return app.saga(saga, name=name).enqueue().id
    graph = app.workflow(name)
    for j, s in zip(jobs, steps, strict=True):
        if "name" not in s:
            raise ConfigurationError("every step of a graph needs a name")
        graph.step(s["name"], j, s.get("depends_on", ()))
    if failure is not None:
        graph.on_failure(failure)
    return graph.enqueue().id


def _created(server: Server, body: dict[str, Any]) -> WorkflowRecord:
    try:
        wid = _create(server, body)
    except UnknownJobError as exc:
        raise Problem("unknown-kind", str(exc)) from None
    except InvalidArgumentsError as exc:
        slug = "payload-too-large" if isinstance(exc, PayloadTooLargeError) else "invalid-arguments"
        raise Problem(slug, str(exc), argument=exc.argument, path=exc.path) from None
    except ConfigurationError as exc:
        raise Problem("invalid-workflow", str(exc)) from None
    return WorkflowHandle(server.app, wid).refresh().record


async def _get(call: Call, workflow_id: int) -> WorkflowRecord:
    record = await call.server.run(call.app.store.workflow_get, workflow_id)
    if record is None:
        raise Problem("workflow-not-found", f"workflow {workflow_id} does not exist")
    return record


@api("createWorkflow", "enqueue")
async def create_workflow(call: Call) -> Response:
    body = await read_json(call.request, call.server.max_body, CREATE_BODY)
    record = await call.server.run(_created, call.server, body)
    headers = {"Location": link(f"/workflows/{record.id}")}
    return json_response(workflow_resource(record), 201, headers)


@api("listWorkflows", "read")
async def list_workflows(call: Call) -> Response:
    q = query_params(call.request, call.operation["parameters"])
    flt = WorkflowFilter(q.get("state") or None, q.get("kind"), q.get("limit", 50), q.get("before"))
    found = await call.server.run(call.app.store.workflow_list, flt)
    return json_response({"workflows": [workflow_resource(r, False) for r in found]})


@api("getWorkflow", "read")
async def get_workflow(call: Call) -> Response:
    record = await _get(call, path_id(call.request, "workflow_id"))
    return json_response(workflow_resource(record))


@api("cancelWorkflow", "admin")
async def cancel_workflow(call: Call) -> Response:
    workflow_id = path_id(call.request, "workflow_id")
    if not await call.server.run(call.app.store.workflow_cancel, workflow_id):
        record = await _get(call, workflow_id)
        raise Problem(
            "not-cancellable",
            f"workflow {workflow_id} is {record.state}: only a running one can be cancelled",
            state=record.state,
        )
    return json_response(workflow_resource(await _get(call, workflow_id)))


def operations() -> dict[tuple[str, str], Spec]:
    return {
        ("/workflows", "post"): {
            "operationId": "createWorkflow",
            "summary": "Create a chain, group, graph or saga of declared job types",
            "tags": ["workflows"],
            "requestBody": json_request(CREATE_BODY),
            "responses": {
                "201": ok("Stored; its first steps' jobs are enqueued", "Workflow"),
                "422": problem("An unknown kind, bad arguments, or steps that form no workflow"),
                **standard_errors(body=True),
            },
        },
        ("/workflows", "get"): {
            "operationId": "listWorkflows",
            "summary": "Workflows, newest first (without their steps)",
            "tags": ["workflows"],
            "parameters": [
                query(
                    "state",
                    {"type": "array", "items": {"type": "string", "enum": list(WORKFLOW_STATES)}},
                    "Only workflows in these states.",
                ),
                query("kind", {"type": "string", "enum": list(KINDS)}, "Only this kind."),
                query(
                    "limit",
                    {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50},
                    "At most this many.",
                ),
                query("before", JOB_ID, "Only workflows older than this id."),
            ],
            "responses": {
                "200": ok("The workflows", "WorkflowList"),
                **standard_errors(params=True),
            },
        },
        ("/workflows/{workflow_id}", "get"): {
            "operationId": "getWorkflow",
            "summary": "One workflow and its steps (state, job id, result)",
            "tags": ["workflows"],
            "parameters": [WORKFLOW_ID_PATH],
            "responses": {
                "200": ok("The workflow", "Workflow"),
                "404": problem("No workflow has this id"),
                **standard_errors(params=True),
            },
        },
        ("/workflows/{workflow_id}/cancel", "post"): {
            "operationId": "cancelWorkflow",
            "summary": "Cancel a running workflow (a saga compensates)",
            "tags": ["workflows"],
            "parameters": [WORKFLOW_ID_PATH],
            "responses": {
                "200": ok("Cancelled (a saga: compensating)", "Workflow"),
                "404": problem("No workflow has this id"),
                "409": problem("It is not running"),
                **standard_errors(params=True),
            },
        },
    }


ROUTES = [
    Route("/workflows", create_workflow, methods=["POST"]),
    Route("/workflows", list_workflows, methods=["GET"]),
    Route("/workflows/{workflow_id:int}", get_workflow, methods=["GET"]),
    Route("/workflows/{workflow_id:int}/cancel", cancel_workflow, methods=["POST"]),
]
