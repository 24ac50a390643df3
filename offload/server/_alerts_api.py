"""REST resources for alerts: list them with whether each fires, add and remove run-time rules,
read the history of firing and resolved events.

Rules go through `app.alerts` (offload/app/_alerts.py), the same calls as `offload alerts …`;
a bad rule comes back as an `invalid-alert` problem whose detail says what is wrong.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from offload._errors import ConfigurationError, InvalidArgumentsError
from offload.app._alerts import CONDITIONS, AlertRule
from offload.jobs._notify import MAX_URL_LENGTH, URL_PATTERN
from offload.server._context import Call, api
from offload.server._http import iso, json_response, query_params, read_json
from offload.server._links import link
from offload.server._problems import Problem
from offload.server._spec import (
    NULLABLE_TIME,
    TIME,
    Spec,
    json_request,
    ok,
    problem,
    query,
    standard_errors,
)

NAME_PATTERN = "^[A-Za-z][A-Za-z0-9_.:-]{0,99}$"  # as offload/app/_alerts.py NAME
NAME_PATH: Spec = {
    "name": "name",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": NAME_PATTERN},
    "description": "The alert's name",
}
CREATE_ALERT: Spec = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "condition", "threshold"],
    "properties": {
        "name": {"type": "string", "pattern": NAME_PATTERN},
        "condition": {"type": "string", "enum": sorted(CONDITIONS)},
        "threshold": {"type": "number", "description": "Fire beyond this value."},
        "target": {
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            "nullable": True,
            "description": "The queue (the job type, for slo_attainment); any when absent.",
        },
        "for_seconds": {
            "type": "number",
            "minimum": 0,
            "maximum": 366 * 86400,
            "description": "Fire only once breached this long (0: at once).",
        },
        "webhook": {
            "type": "string",
            "maxLength": MAX_URL_LENGTH,
            "pattern": URL_PATTERN,
            "nullable": True,
            "description": "POST firing and resolved events here, signed (docs/webhooks.md).",
        },
    },
}
_RULE_PROPERTIES: Spec = {
    "name": {"type": "string"},
    "condition": {"type": "string"},
    "target": {"type": "string", "nullable": True},
    "threshold": {"type": "number"},
    "for_seconds": {"type": "number"},
    "webhook": {"type": "string", "nullable": True},
    "source": {"type": "string", "enum": ["app", "store"]},
    "description": {"type": "string"},
    "firing": {"type": "boolean"},
    "since": NULLABLE_TIME,
    "value": {"type": "number", "nullable": True},
}
COMPONENTS: Spec = {
    "Alert": {
        "type": "object",
        "required": ["name", "condition", "threshold", "source", "firing"],
        "properties": _RULE_PROPERTIES,
    },
    "AlertList": {
        "type": "object",
        "required": ["alerts"],
        "properties": {
            "alerts": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}},
        },
    },
    "AlertHistory": {
        "type": "object",
        "required": ["events"],
        "properties": {
            "events": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "alert": {"type": "string"},
                        "state": {"type": "string", "enum": ["firing", "resolved"]},
                        "value": {"type": "number", "nullable": True},
                        "threshold": {"type": "number", "nullable": True},
                        "message": {"type": "string"},
                        "at": TIME,
                    },
                },
            }
        },
    },
}


def alert_resources(call: Call) -> list[dict[str, Any]]:
    """Every alert rule with its state, JSON-ready."""
    alerts = call.app.alerts
    states = alerts.states()
    out = []
    for rule in alerts.rules():
        state = states.get(rule.name)
        out.append(
            {
                **rule.as_dict(),
                "firing": bool(state and state.firing),
                "since": iso(state.since) if state else None,
                "value": state.value if state else None,
            }
        )
    return out


def _add(call: Call, body: dict[str, Any]) -> AlertRule:
    try:
        return call.app.alerts.add(
            body["name"],
            body["condition"],
            body["threshold"],
            target=body.get("target"),
            for_seconds=body.get("for_seconds", 0.0),
            webhook=body.get("webhook"),
        )
    except (ConfigurationError, InvalidArgumentsError) as exc:
        raise Problem("invalid-alert", str(exc)) from None


def _history(call: Call, limit: int, name: str | None) -> list[dict[str, Any]]:
    return [
        {
            "id": e.id,
            "alert": e.name,
            "state": e.state,
            "value": e.value,
            "threshold": e.threshold,
            "message": e.message,
            "at": iso(e.at),
        }
        for e in call.app.alerts.history(limit, name)
    ]


@api("listAlerts", "read")
async def list_alerts(call: Call) -> Response:
    return json_response({"alerts": await call.server.run(alert_resources, call)})


@api("createAlert", "admin")
async def create_alert(call: Call) -> Response:
    body = await read_json(call.request, call.server.max_body, CREATE_ALERT)
    rule = await call.server.run(_add, call, body)
    return json_response(
        {**rule.as_dict(), "firing": False, "since": None, "value": None},
        201,
        {"Location": link(f"/alerts/{rule.name}")},
    )


@api("deleteAlert", "admin")
async def delete_alert(call: Call) -> Response:
    name = call.request.path_params["name"]
    if not await call.server.run(call.app.alerts.remove, name):
        raise Problem("alert-not-found", f"there is no run-time alert {name!r}")
    return Response(status_code=204)


@api("alertHistory", "read")
async def alert_history(call: Call) -> Response:
    q = query_params(call.request, call.operation["parameters"])
    events = await call.server.run(_history, call, q.get("limit", 50), q.get("name"))
    return json_response({"events": events})


def operations() -> dict[tuple[str, str], Spec]:
    return {
        ("/alerts", "get"): {
            "operationId": "listAlerts",
            "summary": "Alert rules (declared and added at run time) and whether each fires",
            "tags": ["alerts"],
            "responses": {"200": ok("The alerts", "AlertList"), **standard_errors()},
        },
        ("/alerts", "post"): {
            "operationId": "createAlert",
            "summary": "Add or replace a run-time alert rule",
            "tags": ["alerts"],
            "requestBody": json_request(CREATE_ALERT),
            "responses": {
                "201": ok(
                    "The alert",
                    "Alert",
                    {"Location": {"description": "The alert", "schema": {"type": "string"}}},
                ),
                **standard_errors(body=True),
            },
        },
        ("/alert-history", "get"): {
            "operationId": "alertHistory",
            "summary": "Alerts that fired and resolved, newest first",
            "tags": ["alerts"],
            "parameters": [
                query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "At most (50)."),
                query("name", {"type": "string", "maxLength": 100}, "Only this alert."),
            ],
            "responses": {
                "200": ok("The events", "AlertHistory"),
                **standard_errors(params=True),
            },
        },
        ("/alerts/{name}", "delete"): {
            "operationId": "deleteAlert",
            "summary": "Remove a run-time alert rule",
            "tags": ["alerts"],
            "parameters": [NAME_PATH],
            "responses": {
                "204": {"description": "Removed"},
                "404": problem("No run-time alert has this name"),
                **standard_errors(params=True),
            },
        },
    }


ROUTES = [
    Route("/alerts", list_alerts, methods=["GET"]),
    Route("/alerts", create_alert, methods=["POST"]),
    Route("/alert-history", alert_history, methods=["GET"]),
    Route("/alerts/{name}", delete_alert, methods=["DELETE"]),
]
