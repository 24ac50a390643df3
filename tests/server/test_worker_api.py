"""The worker protocol over HTTP, on every engine: fetch, heartbeat, complete, fail, release,
each fenced by the lease token."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from starlette.testclient import TestClient

from offload import Offload
from offload.server._context import Server

from ._helpers import MakeClient, assert_problem, enqueue, fetch
from ._live import wait_until


def _server(client: TestClient) -> Server:
    server: Server = client.app.state.offload  # type: ignore[attr-defined]
    return server


def test_fetch_claims_jobs_with_string_tokens(client: TestClient) -> None:
    assert fetch(client) == []
    ids = [enqueue(client)["id"] for _ in range(3)]
    jobs = fetch(client, limit=2, lease_seconds=60)
    assert [j["id"] for j in jobs] == ids[:2]
    job = jobs[0]
    assert job["kind"] == "add" and job["args"] == {"a": 1, "b": 2} and job["attempt"] == 1
    assert isinstance(job["token"], str) and job["token"].isdigit()
    state = client.get(f"/jobs/{job['id']}").json()
    assert state["state"] == "running" and state["worker"] == "test-worker"


def test_fetch_registers_the_worker(client: TestClient, app: Offload) -> None:
    fetch(client, ["default", "node"], worker="node:host:1", host="box", pid=42, running=0)
    workers = {w.id: w for w in app.store.worker_list(60)}
    w = workers["node:host:1"]
    assert w.host == "box" and w.pid == 42 and w.queues == ["default", "node"]


def test_frequent_fetches_refresh_the_worker_record_once_per_interval(
    client: TestClient, app: Offload, monkeypatch: pytest.MonkeyPatch
) -> None:
    beats: list[str] = []
    original = app.store.worker_beat
    monkeypatch.setattr(
        app.store, "worker_beat", lambda info: (beats.append(info.id), original(info))
    )
    for _ in range(5):
        fetch(client, worker="busy-poller")
    assert beats == ["busy-poller"]


def test_long_poll_wakes_when_a_job_arrives(client: TestClient) -> None:
    got: list[list[dict[str, Any]]] = []
    poll = threading.Thread(target=lambda: got.append(fetch(client, wait=2.0)))
    poll.start()
    wait_until(lambda: _server(client).worker_polls.used == 1, what="the long poll to wait")
    job = enqueue(client)
    poll.join(30)
    assert [j["id"] for j in got[0]] == [job["id"]]
    assert _server(client).worker_polls.used == 0


def test_long_poll_returns_empty_after_the_wait(client: TestClient) -> None:
    assert fetch(client, wait=0.05) == []


def test_long_polls_are_bounded(sqlite_app: Offload, make_client: MakeClient) -> None:
    c = make_client(sqlite_app, max_waiters=1)
    _server(c).worker_polls.used = 1
    r = c.post("/worker/fetch", json={"worker": "w", "queues": ["default"], "wait": 1})
    assert_problem(r, 503, "overloaded")
    assert fetch(c, wait=0) == []  # a fetch that does not wait needs no slot


@pytest.mark.parametrize(
    "body",
    [
        {"queues": ["default"]},
        {"worker": "w", "queues": []},
        {"worker": "w", "queues": ["default"], "limit": 0},
        {"worker": "w", "queues": ["default"], "limit": 101},
        {"worker": "w", "queues": ["default"], "wait": 3},
        {"worker": "w", "queues": ["bad queue"]},
        {"worker": "bad worker id", "queues": ["default"]},
        {"worker": "w", "queues": ["default"], "lease_seconds": 0},
        {"worker": "w", "queues": ["default"], "extra": 1},
    ],
)
def test_bad_fetch_bodies_are_422(client: TestClient, body: dict[str, Any]) -> None:
    assert_problem(client.post("/worker/fetch", json=body), 422, "invalid-request")


def test_complete_then_stale_is_409(client: TestClient) -> None:
    enqueue(client)
    job = fetch(client)[0]
    body = {"id": job["id"], "token": job["token"], "result": {"sum": 3}}
    r = client.post("/worker/complete", json=body)
    assert r.status_code == 200 and r.json() == {
        "id": job["id"],
        "state": "completed",
        "retry_in": None,
    }
    assert client.get(f"/jobs/{job['id']}/result").json()["result"] == {"sum": 3}
    assert (
        assert_problem(client.post("/worker/complete", json=body), 409, "stale-lease")["job_id"]
        == job["id"]
    )


def test_complete_with_a_wrong_token_changes_nothing(client: TestClient) -> None:
    enqueue(client)
    job = fetch(client)[0]
    wrong = str(int(job["token"]) ^ 1)
    assert_problem(
        client.post("/worker/complete", json={"id": job["id"], "token": wrong}), 409, "stale-lease"
    )
    assert_problem(
        client.post("/worker/complete", json={"id": 424242, "token": "1"}), 409, "stale-lease"
    )
    assert client.get(f"/jobs/{job['id']}").json()["state"] == "running"


def test_complete_refuses_results_too_large_or_too_deep(
    sqlite_app: Offload, make_client: MakeClient
) -> None:
    c = make_client(sqlite_app)
    enqueue(c)
    job = fetch(c)[0]
    big = "x" * (sqlite_app.config.max_payload_bytes + 1)
    r = c.post("/worker/complete", json={"id": job["id"], "token": job["token"], "result": big})
    assert_problem(r, 413, "payload-too-large")
    deep: Any = 1
    for _ in range(40):
        deep = [deep]
    r = c.post("/worker/complete", json={"id": job["id"], "token": job["token"], "result": deep})
    assert_problem(r, 422, "invalid-request")
    r = c.post("/worker/complete", json={"id": job["id"], "token": "99999999999999999999"})
    assert_problem(r, 422, "invalid-request")


def test_fail_retries_with_the_kinds_backoff(client: TestClient) -> None:
    enqueue(client, "send_welcome", args={"user_id": 1})
    job = fetch(client, ["emails"])[0]
    r = client.post(
        "/worker/fail",
        json={"id": job["id"], "token": job["token"], "error": "smtp down", "traceback": "tb"},
    )
    assert r.json() == {"id": job["id"], "state": "retryable", "retry_in": 7.0}
    got = client.get(f"/jobs/{job['id']}").json()
    assert got["state"] == "retryable" and got["errors"][0]["error"] == "smtp down"
    assert got["errors"][0]["traceback"] == "tb"
    again = {"id": job["id"], "token": job["token"], "error": "again"}
    assert_problem(client.post("/worker/fail", json=again), 409, "stale-lease")


def test_fail_backoff_of_an_exponential_kind_and_of_an_external_kind(client: TestClient) -> None:
    enqueue(client)
    job = fetch(client)[0]
    r = client.post("/worker/fail", json={"id": job["id"], "token": job["token"], "error": "e"})
    assert r.json()["retry_in"] == 100.0
    enqueue(client, "js.add", args={})
    job = fetch(client, ["node"])[0]
    r = client.post("/worker/fail", json={"id": job["id"], "token": job["token"], "error": "e"})
    assert r.json()["state"] == "retryable" and 1.0 <= r.json()["retry_in"] <= 3.0


def test_fail_not_retryable_or_out_of_attempts_is_dead(client: TestClient) -> None:
    enqueue(client)
    job = fetch(client)[0]
    r = client.post(
        "/worker/fail",
        json={"id": job["id"], "token": job["token"], "error": "bad input", "retryable": False},
    )
    assert r.json() == {"id": job["id"], "state": "dead", "retry_in": None}
    enqueue(client, "explode", args={})
    job = fetch(client)[0]
    r = client.post("/worker/fail", json={"id": job["id"], "token": job["token"], "error": "x"})
    assert r.json()["state"] == "dead"


def test_fail_with_an_explicit_delay(client: TestClient) -> None:
    enqueue(client)
    job = fetch(client)[0]
    r = client.post(
        "/worker/fail",
        json={"id": job["id"], "token": job["token"], "error": "rate limited", "retry_in": 0},
    )
    assert r.json() == {"id": job["id"], "state": "retryable", "retry_in": 0.0}


def test_bad_fail_bodies_are_422(client: TestClient) -> None:
    for body in (
        {"id": 1, "token": "1"},
        {"id": 1, "token": "1", "error": ""},
        {"id": 1, "token": 1, "error": "e"},
        {"id": 1, "token": "1", "error": "e", "retryable": "no"},
        {"id": 1, "token": "1", "error": "e", "retry_in": -1},
    ):
        assert_problem(client.post("/worker/fail", json=body), 422, "invalid-request")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/worker/heartbeat", {}),
        ("/worker/heartbeat", {"leases": [{"id": 1}]}),
        ("/worker/heartbeat", {"leases": [{"id": 1, "token": "x1"}]}),
        ("/worker/heartbeat", {"leases": [], "lease_seconds": 0}),
        ("/worker/release", {"leases": [{"id": 0, "token": "1"}]}),
        ("/worker/release", {"leases": [], "goodbye": "yes"}),
        ("/worker/complete", {"id": 1}),
    ],
)
def test_bad_heartbeat_release_and_complete_bodies_are_422(
    client: TestClient, path: str, body: dict[str, Any]
) -> None:
    assert_problem(client.post(path, json=body), 422, "invalid-request")


def test_heartbeat_extends_leases_and_names_the_lost(client: TestClient) -> None:
    enqueue(client)
    enqueue(client)
    a, b = fetch(client, limit=2, lease_seconds=5)
    client.post("/worker/complete", json={"id": b["id"], "token": b["token"]})
    r = client.post(
        "/worker/heartbeat",
        json={
            "worker": "test-worker",
            "queues": ["default"],
            "leases": [{"id": a["id"], "token": a["token"]}, {"id": b["id"], "token": b["token"]}],
            "lease_seconds": 120,
        },
    )
    assert r.status_code == 200 and r.json() == {"lost": [b["id"]]}
    job = client.get(f"/jobs/{a['id']}").json()
    assert job["lease_expires_at"] > a["lease_expires_at"]


def test_release_puts_jobs_back_and_goodbye_forgets_the_worker(
    client: TestClient, app: Offload
) -> None:
    enqueue(client)
    job = fetch(client, worker="leaving")[0]
    r = client.post(
        "/worker/release",
        json={
            "worker": "leaving",
            "leases": [{"id": job["id"], "token": job["token"]}],
            "goodbye": True,
        },
    )
    assert r.json() == {"released": 1}
    got = client.get(f"/jobs/{job['id']}").json()
    assert got["state"] == "available" and got["attempt"] == 0
    assert "leaving" not in {w.id for w in app.store.worker_list(60)}


def test_http_worker_and_python_producer_share_the_store(client: TestClient, app: Offload) -> None:
    handle = app.enqueue("add", 20, 22)
    job = fetch(client)[0]
    assert job["id"] == handle.id and job["args"] == {"a": 20, "b": 22}
    client.post("/worker/complete", json={"id": job["id"], "token": job["token"], "result": 42})
    assert handle.result(timeout=5) == 42


def test_fetch_sheds_jobs_matching_a_blackhole_rule(client: TestClient, app: Offload) -> None:
    keep = enqueue(client, args={"a": 1, "b": 2})["id"]
    drop = enqueue(client, args={"a": 5, "b": 2})["id"]
    rule = app.rules.add("add", "args.a == 5")
    jobs = fetch(client, limit=10, lease_seconds=60)
    assert [j["id"] for j in jobs] == [keep]
    record = app.store.job_get(drop)
    assert record is not None and record.state == "shed"
    assert any(e.get("rule") == rule.id for e in record.errors), record.errors
