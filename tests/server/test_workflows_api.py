"""Workflows over HTTP: create chains, groups, graphs and sagas of declared job types, read,
list and cancel them, refuse what forms no workflow; and the dashboard's workflow pages."""

from __future__ import annotations

from starlette.testclient import TestClient

from offload import Offload
from offload.testing import drain

from ._helpers import MakeClient, assert_problem


def _add(a: int, b: int) -> dict[str, object]:
    return {"kind": "add", "args": {"a": a, "b": b}}


def test_a_chain_is_created_run_and_read(client: TestClient, app: Offload) -> None:
    r = client.post(
        "/workflows", json={"kind": "chain", "name": "sums", "steps": [_add(1, 2), _add(3, 4)]}
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert r.headers["location"] == f"/workflows/{created['id']}"
    assert (created["state"], created["name"]) == ("running", "sums")
    assert [s["state"] for s in created["steps"]] == ["created", "pending"]
    drain(app)
    got = client.get(f"/workflows/{created['id']}").json()
    assert got["state"] == "completed"
    assert [(s["name"], s["result"]) for s in got["steps"]] == [("add", 3), ("add.2", 7)]
    listed = client.get("/workflows", params={"state": "completed"}).json()["workflows"]
    assert [w["id"] for w in listed] == [created["id"]]
    assert "steps" not in listed[0]


def test_groups_graphs_and_sagas_over_http(client: TestClient, app: Offload) -> None:
    group = {"kind": "group", "steps": [_add(1, 1), _add(2, 2)], "then": _add(0, 0)}
    graph = {
        "kind": "graph",
        "steps": [
            {"name": "a", **_add(1, 1)},
            {"name": "b", **_add(2, 2), "depends_on": ["a"]},
        ],
    }
    saga = {
        "kind": "saga",
        "steps": [
            {"name": "one", **_add(1, 1), "undo": _add(9, 9)},
            {"name": "two", "kind": "explode", "args": {}},
        ],
    }
    ids = [client.post("/workflows", json=body).json()["id"] for body in (group, graph, saga)]
    drain(app)
    states = [client.get(f"/workflows/{i}").json()["state"] for i in ids]
    assert states == ["completed", "completed", "compensated"]


def test_bad_workflows_are_refused(client: TestClient) -> None:
    cycle = {
        "kind": "graph",
        "steps": [
            {"name": "a", **_add(1, 1), "depends_on": ["b"]},
            {"name": "b", **_add(1, 1), "depends_on": ["a"]},
        ],
    }
    assert_problem(client.post("/workflows", json=cycle), 422, "invalid-workflow")
    unnamed = {"kind": "graph", "steps": [_add(1, 1)]}
    assert_problem(client.post("/workflows", json=unnamed), 422, "invalid-workflow")
    unknown = {"kind": "chain", "steps": [{"kind": "nope"}]}
    assert_problem(client.post("/workflows", json=unknown), 422, "unknown-kind")
    bad_args = {"kind": "chain", "steps": [{"kind": "add", "args": {"a": 1}}]}
    assert_problem(client.post("/workflows", json=bad_args), 422, "invalid-arguments")
    assert_problem(
        client.post("/workflows", json={"kind": "x", "steps": []}), 422, "invalid-request"
    )
    assert_problem(client.get("/workflows/999"), 404, "workflow-not-found")


def test_cancel_over_http(client: TestClient) -> None:
    created = client.post("/workflows", json={"kind": "chain", "steps": [_add(1, 2)]}).json()
    r = client.post(f"/workflows/{created['id']}/cancel")
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert_problem(client.post(f"/workflows/{created['id']}/cancel"), 409, "not-cancellable")


def test_the_dashboard_draws_a_workflow(app: Offload, make_client: MakeClient) -> None:
    client = make_client(app)
    saga = {
        "kind": "saga",
        "name": "trip",
        "steps": [
            {"name": "one", **_add(1, 1), "undo": _add(9, 9)},
            {"name": "two", "kind": "explode", "args": {}},
        ],
    }
    wid = client.post("/workflows", json=saga).json()["id"]
    drain(app)
    listing = client.get("/ui/workflows").text
    assert f'href="/ui/workflows/{wid}"' in listing and "trip" in listing
    assert "compensated" in client.get("/ui/workflows?state=compensated").text
    page = client.get(f"/ui/workflows/{wid}").text
    graph = page[page.index('id="graph"') :]
    for step, state in (("one", "completed"), ("two", "dead"), ("undo:one", "completed")):
        assert f'class="wf-node s-{state}" data-step="{step}"' in graph
    assert "wf-edge dash" in graph
    assert client.get("/ui/workflows/999").status_code == 404
