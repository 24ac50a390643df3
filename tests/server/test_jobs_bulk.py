"""Bulk retry, cancel and discard over HTTP (`POST /jobs/bulk`) and in the dashboard (search,
a confirmation page with the count, a CSRF-checked form), without a browser."""

from __future__ import annotations

import re
from typing import Any

from starlette.testclient import TestClient

from offload import Offload
from offload.store._contract import ClaimParams, Failure, NewJob

from ._helpers import TOKENS, MakeClient, assert_problem, bearer, enqueue


def _dead(app: Offload, n: int) -> list[int]:
    """`n` jobs of kind explode that died (their error: "RuntimeError: boom")."""
    inserted = app.store.job_insert_many([NewJob("explode", "doomed", {}) for _ in range(n)])
    claimed = app.store.job_claim(ClaimParams(["doomed"], n, "w", 60.0))
    failures = [Failure(j.id, j.lease_token, "RuntimeError: boom") for j in claimed]
    assert app.store.job_fail_many(failures).applied == n
    return [i.id for i in inserted]


def _state(app: Offload, job_id: int) -> str | None:
    record = app.store.job_get(job_id)
    return None if record is None else record.state


def _bulk(client: TestClient, **body: Any) -> dict[str, Any]:
    r = client.post("/jobs/bulk", json=body)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


def test_bulk_api_counts_then_acts(app: Offload, client: TestClient) -> None:
    dead = _dead(app, 2)
    alice = enqueue(client, args={"a": 1, "b": 2})["id"]
    bob = enqueue(client, "send_welcome", args={"user_id": 7, "locale": "Alice-FR"})["id"]
    assert _bulk(client, action="retry", states=["dead"], dry_run=True) == {
        "action": "retry",
        "dry_run": True,
        "count": 2,
    }
    assert [_state(app, i) for i in dead] == ["dead", "dead"]
    assert _bulk(client, action="retry", error_contain="BOOM")["count"] == 2
    assert [_state(app, i) for i in dead] == ["available", "available"]
    assert _bulk(client, action="cancel", args_contain="alice-fr", queue="emails")["count"] == 1
    assert (_state(app, bob), _state(app, alice)) == ("cancelled", "available")
    since = "2000-01-01T00:00:00Z"
    assert _bulk(client, action="discard", kind="add", inserted_since=since)["count"] == 1
    assert _state(app, alice) is None
    assert _bulk(client, action="discard", all=True)["count"] == 3


def test_bulk_api_refuses_what_it_cannot_do(client: TestClient) -> None:
    enqueue(client)
    r = client.post("/jobs/bulk", json={"action": "discard"})
    assert "names no filter" in assert_problem(r, 422, "invalid-request")["detail"]
    r = client.post("/jobs/bulk", json={"action": "discard", "all": False})
    assert_problem(r, 422, "invalid-request")
    r = client.post("/jobs/bulk", json={"action": "delete", "all": True})
    assert_problem(r, 422, "invalid-request")
    r = client.post("/jobs/bulk", json={"action": "retry", "states": ["lost"]})
    assert_problem(r, 422, "invalid-request")
    r = client.post("/jobs/bulk", json={"action": "retry", "inserted_since": "yesterday"})
    assert_problem(r, 422, "invalid-request")
    r = client.post("/jobs/bulk", json={"action": "retry", "args_contain": "a\u0000b"})
    assert "NUL" in assert_problem(r, 422, "invalid-request")["detail"]
    assert client.get("/jobs").json()["jobs"][0]["state"] == "available"


def test_bulk_api_needs_the_admin_role(sqlite_app: Offload, make_client: MakeClient) -> None:
    secured = make_client(sqlite_app, tokens=TOKENS)
    for role in ("read", "enqueue", "worker"):
        r = secured.post("/jobs/bulk", json={"action": "retry", "all": True}, headers=bearer(role))
        assert_problem(r, 403, "forbidden")
    r = secured.post("/jobs/bulk", json={"action": "retry", "all": True}, headers=bearer("admin"))
    assert r.status_code == 200


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, html
    return found.group(1)


def test_the_jobs_page_searches_arguments_and_errors(app: Offload, client: TestClient) -> None:
    dead = _dead(app, 1)[0]
    ada = enqueue(client, "send_welcome", args={"user_id": 1, "locale": "ada-lovelace"})["id"]
    other = enqueue(client, "send_welcome", args={"user_id": 2})["id"]
    page = client.get("/ui/jobs?args=LOVELACE&error=").text
    assert f">#{ada}<" in page and f">#{other}<" not in page and f">#{dead}<" not in page
    assert 'value="LOVELACE"' in page
    page = client.get("/ui/jobs?error=boom").text
    assert f">#{dead}<" in page and f">#{ada}<" not in page
    assert client.get("/ui/jobs?args=" + "x" * 201).status_code == 400


def test_bulk_from_the_dashboard_confirms_with_the_count(app: Offload, client: TestClient) -> None:
    dead = _dead(app, 3)
    waiting = enqueue(client)["id"]
    jobs = client.get("/ui/jobs?state=dead").text
    assert 'href="/ui/jobs/bulk?action=retry&amp;state=dead"' in jobs
    assert 'id="bulk"' not in client.get("/ui/jobs").text  # no filter: no bulk buttons
    page = client.get("/ui/jobs/bulk?action=retry&state=dead&kind=&queue=&args=&error=")
    assert page.status_code == 200
    assert '<strong id="bulk-count">3</strong> jobs will be retried' in page.text
    assert all(f">#{i}<" in page.text for i in dead) and f">#{waiting}<" not in page.text
    assert [_state(app, i) for i in dead] == ["dead"] * 3  # asking changes nothing
    form = {"csrf": _csrf(page.text), "action": "retry", "state": "dead"}
    assert_problem(client.post("/ui/jobs/bulk", data={**form, "csrf": "x"}), 403, "cross-origin")
    r = client.post("/ui/jobs/bulk", data=form, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/jobs?state=dead&bulk=retried&count=3"
    assert "3 jobs retried." in client.get(r.headers["location"]).text
    assert [_state(app, i) for i in dead] == ["available"] * 3
    none = client.get("/ui/jobs/bulk?action=retry&state=dead").text
    assert 'id="bulk-none"' in none and 'id="bulk-go"' not in none
    unfiltered = client.get("/ui/jobs/bulk?action=discard").text
    assert "Bulk actions need a filter" in unfiltered and 'id="bulk-go"' not in unfiltered
    r = client.post("/ui/jobs/bulk", data={"csrf": form["csrf"], "action": "discard"})
    assert_problem(r, 400, "invalid-parameter")
    assert _state(app, waiting) == "available"


def test_read_role_gets_no_bulk_buttons(sqlite_app: Offload, make_client: MakeClient) -> None:
    secured = make_client(sqlite_app, tokens=TOKENS)
    enqueue(secured, headers=bearer("admin"))
    page = secured.get("/ui/jobs?state=available", headers=bearer("read"))
    assert page.status_code == 200 and 'id="bulk"' not in page.text
    r = secured.get("/ui/jobs/bulk?action=cancel&state=available", headers=bearer("read"))
    assert_problem(r, 403, "forbidden")


def test_the_job_list_searches_too(app: Offload, client: TestClient) -> None:
    dead = _dead(app, 2)
    ada = enqueue(client, "send_welcome", args={"user_id": 1, "locale": "Ada"})["id"]

    def listed(query: str) -> list[int]:
        r = client.get("/jobs?" + query)
        assert r.status_code == 200, r.text
        return [j["id"] for j in r.json()["jobs"]]

    assert listed("args_contain=ada") == [ada]
    assert listed("error_contain=BOOM&state=dead") == dead[::-1]
    assert listed("error_contain=boom&state=available") == []
    assert listed("inserted_since=2999-01-01T00:00:00Z") == []
    page = client.get("/jobs?error_contain=boom&limit=1").json()
    assert [j["id"] for j in page["jobs"]] == [dead[1]]
    assert "error_contain=boom" in page["next"]
    assert [j["id"] for j in client.get(page["next"]).json()["jobs"]] == [dead[0]]
    assert_problem(client.get("/jobs?args_contain="), 400, "invalid-parameter")
