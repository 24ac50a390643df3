"""Blackhole rules over HTTP: list, create, get and delete, every refusal a problem document."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from offload import Offload
from offload.store._policy import NewRule

from ._helpers import assert_problem, bearer, enqueue


def _create(client: TestClient, headers: dict[str, str] | None = None, **body: Any) -> Any:
    return client.post("/rules", json=body, headers=headers or {})


def test_create_get_list_and_delete_a_rule(client: TestClient) -> None:
    r = _create(client, kind="add", where="args.a == 13", reason="13 is unlucky", expires_in=3600)
    assert r.status_code == 201, r.text
    rule = r.json()
    assert r.headers["location"] == f"/rules/{rule['id']}" == rule["links"]["self"]
    assert (rule["kind"], rule["where"], rule["reason"]) == ("add", "args.a == 13", "13 is unlucky")
    assert rule["live"] is True and rule["expires_at"] > rule["created_at"]

    assert client.get(f"/rules/{rule['id']}").json() == rule
    assert client.get("/rules").json() == {"rules": [rule]}

    r = client.delete(f"/rules/{rule['id']}")
    assert r.status_code == 204 and r.content == b""
    assert client.get("/rules").json() == {"rules": []}
    assert_problem(client.get(f"/rules/{rule['id']}"), 404, "rule-not-found")
    assert_problem(client.delete(f"/rules/{rule['id']}"), 404, "rule-not-found")


def test_a_created_rule_sheds_matching_jobs_and_a_deleted_one_no_more(client: TestClient) -> None:
    rule = _create(client, where='queue == "default" and args.a == 13').json()
    shed = enqueue(client, args={"a": 13, "b": 0})
    kept = enqueue(client, args={"a": 1, "b": 0})
    assert (shed["state"], kept["state"]) == ("shed", "available")
    assert f"blackhole rule {rule['id']}" in shed["errors"][-1]["error"]
    client.delete(f"/rules/{rule['id']}")
    assert enqueue(client, args={"a": 13, "b": 0})["state"] == "available"


def test_rules_are_the_ones_the_python_api_sees(client: TestClient, app: Offload) -> None:
    made = app.rules.add(kind="send_welcome", where="args.user_id in [1, 2]")
    listed = client.get("/rules").json()["rules"]
    assert [(r["id"], r["kind"], r["where"]) for r in listed] == [
        (made.id, "send_welcome", "args.user_id in [1, 2]")
    ]
    created = _create(client, kind="add").json()
    assert [r.id for r in app.rules.list()] == [made.id, created["id"]]


def test_expired_rules_are_listed_only_when_asked(client: TestClient, app: Offload) -> None:
    old = app.store.rule_add(NewRule(kind="add", where="", expires_in=-1.0))
    live = _create(client, kind="explode").json()
    assert [r["id"] for r in client.get("/rules").json()["rules"]] == [live["id"]]
    both = client.get("/rules?expired=true").json()["rules"]
    assert [(r["id"], r["live"]) for r in both] == [(old.id, False), (live["id"], True)]
    assert client.get(f"/rules/{old.id}").json()["live"] is False
    assert client.get("/rules?expired=false").json()["rules"] == [live]


def test_expires_at_sets_the_expiry(client: TestClient) -> None:
    rule = _create(client, kind="add", expires_at="2999-01-01T00:00:00Z").json()
    assert rule["expires_at"].startswith("2999-01-01T00:00:00")


@pytest.mark.parametrize(
    ("where", "named"),
    [
        ("args.a ==", "is not valid"),
        ('__import__("os").system("true")', "function calls are not allowed"),
        ("args.a", "a field or value alone is not a condition"),
        ("secret == 1", "unknown name 'secret'"),
        ("args.a + 1 == 2", "arithmetic is not allowed"),
    ],
)
def test_a_bad_where_is_422_invalid_rule_naming_the_problem(
    client: TestClient, where: str, named: str
) -> None:
    body = assert_problem(_create(client, kind="add", where=where), 422, "invalid-rule")
    assert named in body["detail"], body
    assert client.get("/rules").json() == {"rules": []}


def test_a_rule_for_every_job_is_refused(client: TestClient) -> None:
    body = assert_problem(_create(client), 422, "invalid-rule")
    assert "kind, a where expression, or both" in body["detail"]
    assert_problem(_create(client, kind="  "), 422, "invalid-rule")


def test_an_expiry_in_the_past_is_refused(client: TestClient) -> None:
    body = assert_problem(
        _create(client, kind="add", expires_at="2000-01-01T00:00:00Z"), 422, "invalid-rule"
    )
    assert "has passed" in body["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "add", "expires_in": 0},
        {"kind": "add", "expires_in": 60, "expires_at": "2999-01-01T00:00:00Z"},
        {"kind": "add", "expires_at": "tomorrow"},
        {"kind": "add", "colour": "red"},
        {"kind": 7},
        {"kind": "add", "where": "x" * 2001},
        [],
    ],
)
def test_bodies_that_break_the_schema_are_422(client: TestClient, body: Any) -> None:
    assert_problem(client.post("/rules", json=body), 422, "invalid-request")


def test_not_json_is_400_and_other_media_types_415(client: TestClient) -> None:
    json_type = {"content-type": "application/json"}
    assert_problem(client.post("/rules", content=b"{", headers=json_type), 400, "invalid-json")
    text = {"content-type": "text/plain"}
    assert_problem(
        client.post("/rules", content=b"kind=x", headers=text), 415, "unsupported-media-type"
    )


@pytest.mark.parametrize("path", ["/rules?expired=maybe", "/rules?colour=red", "/rules/0"])
def test_bad_parameters_are_400(client: TestClient, path: str) -> None:
    assert_problem(client.get(path), 400, "invalid-parameter")


def test_out_of_range_rule_ids_are_400(client: TestClient) -> None:
    assert_problem(client.delete(f"/rules/{2**63}"), 400, "invalid-parameter")


def test_unknown_methods_are_405(client: TestClient) -> None:
    r = client.put("/rules/1", json={})
    assert_problem(r, 405, "method-not-allowed")
    assert r.headers["allow"] == "DELETE, GET, HEAD"


def test_reading_needs_read_and_changing_needs_admin(secured: TestClient) -> None:
    assert_problem(secured.get("/rules"), 401, "unauthorized")
    assert_problem(_create(secured, kind="add"), 401, "unauthorized")
    assert_problem(secured.delete("/rules/1"), 401, "unauthorized")
    for role in ("read", "enqueue", "worker"):
        assert_problem(_create(secured, bearer(role), kind="add"), 403, "forbidden")
        assert_problem(secured.delete("/rules/1", headers=bearer(role)), 403, "forbidden")
    rule = _create(secured, bearer("admin"), kind="add").json()
    assert secured.get("/rules", headers=bearer("read")).json()["rules"][0]["id"] == rule["id"]
    assert secured.get(f"/rules/{rule['id']}", headers=bearer("read")).status_code == 200
    assert secured.delete(f"/rules/{rule['id']}", headers=bearer("admin")).status_code == 204


def test_cross_origin_writes_are_refused_without_tokens(client: TestClient) -> None:
    evil = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    assert_problem(_create(client, evil, kind="add"), 403, "cross-origin")
    assert client.get("/rules").json() == {"rules": []}
