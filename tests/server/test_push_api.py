"""The HTTP side of results pushed: `notify` in POST /jobs (checked before anything is
stored), offload's own delivery kind refused, and `GET /jobs/{id}/events` on a finished or
missing job (tests/integration/test_push.py follows live jobs with a real worker)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from offload import Offload
from offload.store._contract import ClaimParams, Completion, JobFilter

from ._helpers import MakeClient


def _count(app: Offload) -> int:
    return len(app.store.job_list(JobFilter(limit=100)))


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://hooks.example.com/x", "notify"),
        ("hooks.example.com/x", "notify"),
        ("javascript:alert(1)", "notify"),
        ("http://", "notify"),
        ("https://user:pw@hooks.example.com/", "credentials"),
        ("https://hooks.example.com:99999/", "notify"),
    ],
)
def test_a_bad_notify_url_is_refused_before_anything_is_stored(
    client: TestClient, app: Offload, url: str, says: str
) -> None:
    for kind, args in (("add", {"a": 1, "b": 2}), ("js.add", {})):
        r = client.post("/jobs", json={"kind": kind, "args": args, "notify": url})
        assert r.status_code == 422, r.text
        assert says in r.json()["detail"]
    assert _count(app) == 0


def test_a_notify_url_is_kept_with_the_job_of_any_kind(client: TestClient, app: Offload) -> None:
    url = "https://hooks.example.com/offload?tenant=7"
    for kind, args in (("add", {"a": 1, "b": 2}), ("js.add", {"x": 1})):
        r = client.post("/jobs", json={"kind": kind, "args": args, "notify": url})
        assert r.status_code == 202, r.text
        record = app.store.job_get(r.json()["id"])
        assert record is not None and record.meta["offload.notify"] == url


def test_the_allow_list_refuses_other_hosts(
    app: Offload, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OFFLOAD_WEBHOOK_ALLOW", "hooks.example.com, *.internal.example:8443")
    client = make_client(app)
    body: dict[str, Any] = {"kind": "add", "args": {"a": 1, "b": 2}}
    for url in ("https://hooks.example.com/x", "https://a.internal.example:8443/x"):
        assert client.post("/jobs", json={**body, "notify": url}).status_code == 202
    for url in (
        "http://169.254.169.254/latest/meta-data",
        "https://hooks.example.com.evil.example/x",
        "https://a.internal.example/x",  # another port
    ):
        r = client.post("/jobs", json={**body, "notify": url})
        assert r.status_code == 422, url
        assert r.json()["type"].endswith("/invalid-arguments")
        assert "allow-list" in r.json()["detail"]
    # The same through meta, which a client could try instead.
    r = client.post("/jobs", json={**body, "meta": {"offload.notify": "http://10.0.0.1/"}})
    assert r.status_code == 422 and "allow-list" in r.json()["detail"]
    assert _count(app) == 2


def test_offload_s_own_delivery_kind_cannot_be_enqueued(
    app: Offload, make_client: MakeClient
) -> None:
    client = make_client(app, allow_undeclared=True)
    body = {"kind": "offload.webhook", "args": {"url": "https://evil.example/", "event": {}}}
    r = client.post("/jobs", json=body)
    assert r.status_code == 422 and r.json()["type"].endswith("/unknown-kind")
    assert _count(app) == 0


def _stream(client: TestClient, job_id: int) -> list[tuple[str, dict[str, Any]]]:
    r = client.get(f"/jobs/{job_id}/events")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    out = []
    for chunk in r.text.replace("\r\n", "\n").split("\n\n"):
        fields = dict(line.split(": ", 1) for line in chunk.splitlines() if ": " in line)
        if "event" in fields:
            out.append((fields["event"], json.loads(fields["data"])))
    return out


def test_a_finished_job_s_stream_sends_its_final_event_and_ends(
    client: TestClient, app: Offload
) -> None:
    job = app.job_type("add").enqueue(2, 3)
    [claimed] = app.store.job_claim(ClaimParams(["default"], 1, "w", 30.0))
    app.store.job_complete_many([Completion(claimed.id, claimed.lease_token, 5)])
    [(name, document)] = _stream(client, job.id)
    assert name == "completed"
    assert document["type"] == "job.completed"
    data = document["data"]
    assert (data["id"], data["kind"], data["state"], data["result"]) == (
        job.id,
        "add",
        "completed",
        5,
    )
    assert document["timestamp"] == data["finished_at"]

    cancelled = app.job_type("add").enqueue(1, 1)
    assert cancelled.cancel()
    assert [n for n, _ in _stream(client, cancelled.id)] == ["cancelled"]


def test_the_stream_of_a_missing_job_is_a_404(client: TestClient) -> None:
    r = client.get("/jobs/999999/events")
    assert r.status_code == 404
    assert r.json()["type"].endswith("/job-not-found")
