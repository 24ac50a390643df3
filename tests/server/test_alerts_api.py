"""Alerts over HTTP: list them with whether each fires, add and remove run-time rules (a bad
one is an `invalid-alert` problem), read the history; and the dashboard shows them."""

from __future__ import annotations

from starlette.testclient import TestClient

from offload import Offload
from offload.store._alerts import FIRING


def test_add_list_history_and_remove(client: TestClient, app: Offload) -> None:
    app.alert("declared", "dead_per_hour", 10)
    created = client.post(
        "/alerts",
        json={"name": "mail", "condition": "queue_depth", "threshold": 100, "target": "mail"},
    )
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/alerts/mail"
    assert created.json()["description"] == "queue_depth of mail above 100"

    app.store.alert_record("mail", FIRING, 150.0, 100.0, "alert mail: deep")
    listed = client.get("/alerts").json()["alerts"]
    assert [(a["name"], a["source"], a["firing"]) for a in listed] == [
        ("declared", "app", False),
        ("mail", "store", True),
    ]
    events = client.get("/alert-history", params={"name": "mail"}).json()["events"]
    assert [(e["alert"], e["state"], e["value"]) for e in events] == [("mail", "firing", 150.0)]

    overview = client.get("/")
    assert 'id="alerts-firing"' in overview.text and "1 alert</a>: mail" in overview.text
    page = client.get("/ui/alerts")
    assert page.status_code == 200
    assert "queue_depth of mail above 100" in page.text and "alert mail: deep" in page.text

    assert client.delete("/alerts/mail").status_code == 204
    gone = client.delete("/alerts/mail")
    assert gone.status_code == 404 and gone.json()["type"] == "/problems/alert-not-found"
    assert [a["name"] for a in client.get("/alerts").json()["alerts"]] == ["declared"]


def test_a_bad_alert_is_refused(client: TestClient, app: Offload) -> None:
    app.webhooks.allow = ["hooks.example.com"]
    elsewhere = "https://elsewhere.example.com/x"
    for body, words in [
        ({"name": "x", "condition": "dead_per_hour", "threshold": 1, "target": "q"}, "no target"),
        ({"name": "x", "condition": "queue_depth", "threshold": 1, "webhook": elsewhere}, "allow"),
    ]:
        answer = client.post("/alerts", json=body)
        assert answer.status_code == 422, answer.text
        assert answer.json()["type"] == "/problems/invalid-alert"
        assert words in answer.json()["detail"]
    unknown = client.post("/alerts", json={"name": "x", "condition": "nope", "threshold": 1})
    assert unknown.status_code == 422
