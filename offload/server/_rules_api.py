"""REST resources for blackhole rules: list, create, read and delete them at run time.

Rules go through `app.rules` (offload/app/_admission.py), the same calls as `offload rules …`,
so the `where` language is parsed in one place (offload/dispatch/_rules.py) and a bad expression
comes back as an `invalid-rule` problem whose detail names what is wrong and where.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from offload._errors import ConfigurationError
from offload.dispatch._rules import MAX_LENGTH, Rule
from offload.server._context import Call, api
from offload.server._http import iso, json_response, path_id, query_params, read_json
from offload.server._links import link
from offload.server._problems import Problem
from offload.server._schema import parse_datetime
from offload.server._spec import (
    ACCEPTED_TIME,
    NULLABLE_TIME,
    TIME,
    Spec,
    json_request,
    ok,
    problem,
    query,
    standard_errors,
)

MAX_EXPIRY = 366 * 86400.0
RULE_ID_PATH: Spec = {
    "name": "rule_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
    "description": "The rule's id",
}
CREATE_RULE: Spec = {
    "type": "object",
    "additionalProperties": False,
    "not": {"required": ["expires_in", "expires_at"]},
    "properties": {
        "kind": {
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            "nullable": True,
            "description": "Only jobs of this job type (any type when absent).",
        },
        "where": {
            "type": "string",
            "maxLength": MAX_LENGTH,
            "nullable": True,
            "description": "A condition on the job, e.g. `args.customer_id == 123` (every job "
            "of `kind` when absent). Fields: args.<name>…, meta.<name>…, kind, queue, tenant; "
            "operators == != < <= > >= in, not in, and, or, not; JSON literals.",
        },
        "reason": {
            "type": "string",
            "maxLength": 500,
            "description": "Why; recorded on every job the rule sheds.",
        },
        "expires_in": {
            "type": "number",
            "minimum": 0,
            "exclusiveMinimum": True,
            "maximum": MAX_EXPIRY,
            "description": "Stop applying after this many seconds.",
        },
        "expires_at": {
            **ACCEPTED_TIME,
            "description": "Stop applying at this time (in the future, before the year 9999).",
        },
    },
}
COMPONENTS: Spec = {
    "Rule": {
        "type": "object",
        "required": ["id", "kind", "where", "reason", "created_at", "expires_at", "live", "links"],
        "properties": {
            "id": {"type": "integer"},
            "kind": {"type": "string", "nullable": True},
            "where": {"type": "string"},
            "reason": {"type": "string"},
            "created_at": TIME,
            "expires_at": NULLABLE_TIME,
            "live": {"type": "boolean", "description": "Whether it applies now (not expired)."},
            "links": {
                "type": "object",
                "required": ["self"],
                "properties": {"self": {"type": "string"}},
            },
        },
    },
    "RuleList": {
        "type": "object",
        "required": ["rules"],
        "properties": {
            "rules": {"type": "array", "items": {"$ref": "#/components/schemas/Rule"}},
        },
    },
}


def rule_resource(rule: Rule, now: float) -> dict[str, Any]:
    """The JSON form of a rule."""
    return {
        "id": rule.id,
        "kind": rule.kind,
        "where": rule.where,
        "reason": rule.reason,
        "created_at": iso(rule.created_at),
        "expires_at": iso(rule.expires_at),
        "live": rule.expires_at is None or rule.expires_at > now,
        "links": {"self": link(f"/rules/{rule.id}")},
    }


def _expiry(body: dict[str, Any]) -> float | datetime | None:
    if "expires_in" in body:
        return float(body["expires_in"])
    if "expires_at" in body:
        at = parse_datetime(body["expires_at"])
        assert at is not None  # the schema checked the format
        return at
    return None


def _add(call: Call, body: dict[str, Any]) -> Rule:
    expires = _expiry(body)
    if isinstance(expires, datetime) and expires.timestamp() <= call.app.store.now():
        raise Problem(
            "invalid-rule",
            f"expires_at {body['expires_at']} has passed; give a time in the future",
        )
    try:
        return call.app.rules.add(
            kind=body.get("kind"),
            where=body.get("where"),
            expires=expires,
            reason=body.get("reason", ""),
        )
    except ConfigurationError as exc:  # InvalidRuleError too: the detail names the problem
        raise Problem("invalid-rule", str(exc)) from None


def _find(call: Call, rule_id: int) -> Rule:
    for rule in call.app.rules.list(include_expired=True):
        if rule.id == rule_id:
            return rule
    raise Problem("rule-not-found", f"there is no rule {rule_id}", rule_id=rule_id)


@api("listRules", "read")
async def list_rules(call: Call) -> Response:
    q = query_params(call.request, call.operation["parameters"])
    found = await call.server.run(call.app.rules.list, q.get("expired", False))
    now = await call.server.run(call.app.store.now)
    return json_response({"rules": [rule_resource(r, now) for r in found]})


@api("createRule", "admin")
async def create_rule(call: Call) -> Response:
    body = await read_json(call.request, call.server.max_body, CREATE_RULE)
    rule = await call.server.run(_add, call, body)
    now = await call.server.run(call.app.store.now)
    headers = {"Location": link(f"/rules/{rule.id}")}
    return json_response(rule_resource(rule, now), 201, headers)


@api("getRule", "read")
async def get_rule(call: Call) -> Response:
    rule = await call.server.run(_find, call, path_id(call.request, "rule_id"))
    now = await call.server.run(call.app.store.now)
    return json_response(rule_resource(rule, now))


@api("deleteRule", "admin")
async def delete_rule(call: Call) -> Response:
    rule_id = path_id(call.request, "rule_id")
    if not await call.server.run(call.app.rules.remove, rule_id):
        raise Problem("rule-not-found", f"there is no rule {rule_id}", rule_id=rule_id)
    return Response(status_code=204)


def operations() -> dict[tuple[str, str], Spec]:
    not_found = problem("No rule has this id")
    return {
        ("/rules", "get"): {
            "operationId": "listRules",
            "summary": "Blackhole rules in force, oldest first",
            "tags": ["rules"],
            "parameters": [
                query("expired", {"type": "boolean"}, "Also rules that have expired (false).")
            ],
            "responses": {"200": ok("The rules", "RuleList"), **standard_errors(params=True)},
        },
        ("/rules", "post"): {
            "operationId": "createRule",
            "summary": "Add a rule: matching jobs are shed instead of run, from now on",
            "tags": ["rules"],
            "requestBody": json_request(CREATE_RULE),
            "responses": {
                "201": ok(
                    "The rule",
                    "Rule",
                    {"Location": {"description": "The rule", "schema": {"type": "string"}}},
                ),
                **standard_errors(body=True),
            },
        },
        ("/rules/{rule_id}", "get"): {
            "operationId": "getRule",
            "summary": "One rule (expired ones too, until removed)",
            "tags": ["rules"],
            "parameters": [RULE_ID_PATH],
            "responses": {
                "200": ok("The rule", "Rule"),
                "404": not_found,
                **standard_errors(params=True),
            },
        },
        ("/rules/{rule_id}", "delete"): {
            "operationId": "deleteRule",
            "summary": "Remove a rule: matching jobs run again",
            "tags": ["rules"],
            "parameters": [RULE_ID_PATH],
            "responses": {
                "204": {"description": "Removed"},
                "404": not_found,
                **standard_errors(params=True),
            },
        },
    }


ROUTES = [
    Route("/rules", list_rules, methods=["GET"]),
    Route("/rules", create_rule, methods=["POST"]),
    Route("/rules/{rule_id:int}", get_rule, methods=["GET"]),
    Route("/rules/{rule_id:int}", delete_rule, methods=["DELETE"]),
]
