"""Paused queues and kinds over HTTP (admin) and on the dashboard: pause, list, resume, shown
paused in the queue and kind lists, every refusal a problem document."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from offload import Offload

from ._helpers import assert_problem, bearer


def test_pause_list_and_resume_queues_and_kinds(client: TestClient, app: Offload) -> None:
    r = client.put("/queues/default/pause", json={"reason": "maintenance"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["scope"], body["name"], body["reason"], body["new"]) == (
        "queue",
        "default",
        "maintenance",
        True,
    )
    again = client.put("/queues/default/pause")
    assert again.status_code == 200 and again.json()["new"] is False
    assert client.put("/kinds/add/pause").status_code == 201

    listed = client.get("/pauses").json()["pauses"]
    assert [(p["scope"], p["name"]) for p in listed] == [("kind", "add"), ("queue", "default")]
    assert [(p.scope, p.name) for p in app.store.pause_list()] == [
        ("kind", "add"),
        ("queue", "default"),
    ]
    queues = {q["name"]: q["paused"] for q in client.get("/queues").json()["queues"]}
    assert queues["default"] is True
    kinds = {k["name"]: k["paused"] for k in client.get("/kinds").json()["kinds"]}
    assert kinds["add"] is True and kinds["send_welcome"] is False

    assert client.delete("/queues/default/pause").status_code == 204
    assert_problem(client.delete("/queues/default/pause"), 404, "not-paused")
    assert client.delete("/kinds/add/pause").status_code == 204
    assert client.get("/pauses").json() == {"pauses": []}


def test_bad_names_and_bodies_are_refused(client: TestClient) -> None:
    assert_problem(client.put("/queues/a%20b/pause"), 400, "invalid-parameter")
    assert_problem(client.put("/kinds/add/pause", json={"why": "x"}), 422, "invalid-request")


def test_pausing_needs_the_admin_role(secured: TestClient) -> None:
    assert_problem(secured.put("/queues/default/pause", headers=bearer("read")), 403, "forbidden")
    assert secured.get("/pauses", headers=bearer("read")).status_code == 200
    r = secured.put("/queues/default/pause", headers=bearer("admin"))
    assert r.status_code == 201 and r.json()["paused_by"] == "ops"


def test_dashboard_buttons_pause_and_resume(client: TestClient, app: Offload) -> None:
    page = client.get("/ui/queues").text
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert csrf is not None
    assert 'data-pause="kinds:add"' in page and 'data-pause="queues:default"' in page
    form = {"csrf": csrf.group(1), "next": "/ui/queues"}
    r = client.post("/ui/kinds/add/pause", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/queues"
    assert [p.name for p in app.store.pause_list()] == ["add"]
    page = client.get("/ui/queues").text
    assert re.search(r"kind=add\">add</a> <span class=\"badge paused\"", page)
    assert ">Resume</button>" in page

    r = client.post("/ui/queues/default/pause", data={**form, "next": "/"}, follow_redirects=False)
    assert r.headers["location"] == "/"
    assert "badge paused" in client.get("/").text
    client.post("/ui/queues/default/resume", data=form)
    client.post("/ui/kinds/add/resume", data=form)
    app.store.pause_add("kind", "nobody.declares.this")  # listed too, with its button
    assert 'data-pause="kinds:nobody.declares.this"' in client.get("/ui/queues").text
    app.store.pause_remove("kind", "nobody.declares.this")
    assert app.store.pause_list() == []
    assert_problem(client.post("/ui/kinds/add/pause", data={"next": "/"}), 403, "cross-origin")
