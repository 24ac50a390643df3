"""The OpenAPI document: valid, covering exactly the server's routes, and true to the server's
behaviour under schemathesis (generated valid and invalid requests against every operation)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from openapi_spec_validator import validate
from starlette.routing import Route

from offload import Offload
from offload.server import create_app

from ._helpers import TOKENS, MakeClient, bearer, declare


def _routes(asgi: Any) -> set[tuple[str, str]]:
    out = set()
    for route in asgi.routes:
        if isinstance(route, Route):
            path = route.path.replace(":int", "")
            for method in route.methods or ():
                if method != "HEAD":
                    out.add((path, method.lower()))
    return out


@pytest.mark.parametrize("tokens", [(), TOKENS], ids=["no-tokens", "tokens"])
def test_document_is_valid_and_covers_every_route(
    sqlite_app: Offload, make_client: MakeClient, tokens: Any
) -> None:
    client = make_client(sqlite_app, tokens=tokens)
    doc = client.get("/openapi.json").json()
    validate(doc)
    documented = {(path, method) for path, methods in doc["paths"].items() for method in methods}
    assert documented == _routes(client.app)
    ids = [op["operationId"] for methods in doc["paths"].values() for op in methods.values()]
    assert len(ids) == len(set(ids))
    assert ("securitySchemes" in doc["components"]) == bool(tokens)


def test_document_lists_this_servers_kinds_and_bounds(
    sqlite_app: Offload, make_client: MakeClient
) -> None:
    doc = make_client(sqlite_app, max_wait=5.0).get("/openapi.json").json()
    body = doc["paths"]["/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    branches = {b["properties"]["kind"]["enum"][0]: b for b in body["oneOf"]}
    assert list(branches) == ["add", "explode", "send_welcome", "js.add"]
    welcome = branches["send_welcome"]["properties"]["args"]
    assert welcome["required"] == ["user_id"] and welcome["additionalProperties"] is False
    assert welcome["properties"]["user_id"]["type"] == "integer"
    assert welcome["properties"]["locale"] == {"type": "string"}
    assert branches["js.add"]["properties"]["args"]["type"] == "object"
    fetch = doc["paths"]["/worker/fetch"]["post"]["requestBody"]["content"]["application/json"]
    assert fetch["schema"]["properties"]["wait"]["maximum"] == 5.0


@pytest.fixture
def api_schema(tmp_path: Path) -> Iterator[Any]:
    app = declare(Offload(f"sqlite:///{tmp_path / 'schemathesis.db'}"))
    for i in range(3):
        app.enqueue("add", i, i)
    asgi = create_app(app, tokens=TOKENS, max_wait=0.01)  # Expect: 200-ok cases time out fast
    schema = schemathesis.openapi.from_asgi("/openapi.json", asgi)
    schema.config.generation.update(
        max_examples=25, modes=["positive", "negative"], deterministic=True
    )
    schema.config.checks.positive_data_acceptance.expected_statuses = [
        *schema.config.checks.positive_data_acceptance.expected_statuses,
        "410",  # the result of a job that ended dead
        "417",  # Expect: 200-ok and no worker completed the job within the wait
    ]
    schema.config.checks.negative_data_rejection.expected_statuses = [
        *schema.config.checks.negative_data_rejection.expected_statuses,
        "413",  # a generated body over the size limit
        "417",  # an Expect value other than 200-ok/202-accepted: refused by HTTP's own status
    ]
    yield schema
    app.close()


# The event streams do not end by themselves (a job's ends with the job, which no worker runs
# here), so no generated call of them could be judged; the browser and live-feed tests exercise
# the dashboard's (tests/server/test_browser_live.py), tests/integration/test_push.py a job's.
schema = (
    schemathesis.pytest.from_fixture("api_schema")
    .exclude(operation_id="dashboardEvents")
    .exclude(operation_id="getJobEvents")
)


@schema.parametrize()
def test_api_conforms_to_its_document(case: Any) -> None:
    if case.headers and "Idempotency-Key" in case.headers and case.meta.generation.mode.is_positive:
        # a generated key would be reused with other arguments (a 422 by design): keep it unique
        case.headers["Idempotency-Key"] = uuid.uuid4().hex
    excluded = []
    if case.operation.definition.raw.get("operationId") in ("createRule", "createWorkflow"):
        # A rule's `where` is a small language that JSON Schema cannot describe: a schema-valid
        # string is usually not a valid expression (422 invalid-rule, as documented). Nor can
        # it say that a workflow's steps name declared kinds and form a graph without cycles
        # (422 unknown-kind, invalid-arguments, invalid-workflow).
        excluded.append(schemathesis.checks.positive_data_acceptance)
    if case.meta.generation.mode.is_positive and (
        _holds_unstorable_text(case.body) or _holds_unstorable_text(case.query)
    ):
        # offload refuses NUL and lone surrogates anywhere in a job's data or a search text
        # (422, documented in docs/api.md); JSON Schema cannot say "no such character anywhere
        # in this value".
        excluded.append(schemathesis.checks.positive_data_acceptance)
    # An empty list or an object as a query value has no form on the wire: the server never
    # receives it, so a case made negative by one says nothing about the server.
    if case.query:
        sent = {k: v for k, v in case.query.items() if _on_the_wire(v)}
        if sent != case.query:
            case.query = sent
            if not case.meta.generation.mode.is_positive:
                excluded.append(schemathesis.checks.negative_data_rejection)
    case.call_and_validate(headers=bearer("admin"), excluded_checks=excluded)


def _holds_unstorable_text(value: Any) -> bool:
    """Whether a generated body or query holds a NUL or a lone surrogate in any string or key."""
    if isinstance(value, str):
        return "\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, dict):
        return any(_holds_unstorable_text(k) or _holds_unstorable_text(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_unstorable_text(v) for v in value)
    return False


def _on_the_wire(value: Any) -> bool:
    """Whether a generated query value is sent at all."""
    if isinstance(value, dict):
        return False
    if isinstance(value, list):
        return bool(value) and all(not isinstance(v, (list, dict)) for v in value)
    return True
