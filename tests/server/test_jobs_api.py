"""The REST resources for jobs, on every engine: each success and each problem path."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from offload import Offload
from offload._errors import OffloadError, StoreBusyError

from ._helpers import MakeClient, assert_problem, bearer, enqueue, fetch
from ._live import wait_until


# --- POST /jobs ------------------------------------------------------------------------
def test_create_answers_202_with_location_and_the_job(client: TestClient) -> None:
    r = client.post("/jobs", json={"kind": "send_welcome", "args": {"user_id": 7}})
    assert r.status_code == 202
    job = r.json()
    assert r.headers["location"] == f"/jobs/{job['id']}"
    assert job["kind"] == "send_welcome" and job["queue"] == "emails"
    assert job["state"] == "available" and job["args"] == {"user_id": 7}
    assert job["max_attempts"] == 3 and job["links"] == {"self": f"/jobs/{job['id']}"}


def test_create_applies_options(client: TestClient) -> None:
    job = enqueue(
        client,
        "add",
        queue="other",
        priority=5,
        max_attempts=9,
        timeout=2.5,
        delay=600,
        meta={"trace": "abc"},
    )
    assert job["queue"] == "other" and job["priority"] == 5 and job["max_attempts"] == 9
    assert job["timeout"] == 2.5 and job["meta"] == {"trace": "abc"}
    assert job["state"] == "scheduled"


def test_create_at_a_time(client: TestClient) -> None:
    at = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    job = enqueue(client, "add", run_at=at.isoformat().replace("+00:00", "Z"))
    assert job["state"] == "scheduled"
    assert datetime.fromisoformat(job["scheduled_at"]) == at


def test_create_external_kind_takes_any_json_arguments(client: TestClient) -> None:
    job = enqueue(client, "js.add", args={"a": [1, {"b": None}], "c": "x"})
    assert job["queue"] == "node" and job["args"] == {"a": [1, {"b": None}], "c": "x"}


def test_unknown_kind_is_422_unknown_kind(client: TestClient) -> None:
    body = assert_problem(client.post("/jobs", json={"kind": "nope"}), 422, "unknown-kind")
    assert "--external-kind" in body["detail"] and body["kind"] == "nope"


def test_undeclared_kinds_when_allowed(app: Offload, make_client: MakeClient) -> None:
    c = make_client(app, allow_undeclared=True)
    job = enqueue(c, "anything.at-all", args={"x": 1}, queue="py")
    assert job["kind"] == "anything.at-all" and job["queue"] == "py"
    assert c.get("/kinds").json()["undeclared_allowed"] is True


def test_invalid_arguments_name_the_argument(client: TestClient) -> None:
    r = client.post("/jobs", json={"kind": "send_welcome", "args": {"user_id": "seven"}})
    assert assert_problem(r, 422, "invalid-arguments")["argument"] == "user_id"
    r = client.post("/jobs", json={"kind": "send_welcome", "args": {}})
    assert assert_problem(r, 422, "invalid-arguments")["argument"] == "user_id"
    r = client.post("/jobs", json={"kind": "send_welcome", "args": {"user_id": 1, "x": 2}})
    assert_problem(r, 422, "invalid-arguments")


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"args": {}},
        {"kind": "add", "args": [1, 2]},
        {"kind": "add", "priority": True},
        {"kind": "add", "priority": 5000},
        {"kind": "add", "delay": -1},
        {"kind": "add", "run_at": "tomorrow"},
        {"kind": "add", "run_at": "2030-01-01T00:00:00"},
        {"kind": "add", "delay": 1, "run_at": "2030-01-01T00:00:00Z"},
        {"kind": "add", "unknown": 1},
        {"kind": "add", "queue": "bad queue!"},
        {"kind": "add", "timeout": 0},
    ],
)
def test_bodies_that_break_the_schema_are_422(client: TestClient, body: Any) -> None:
    assert_problem(client.post("/jobs", json=body), 422, "invalid-request")


def test_not_json_is_400_and_other_media_types_415(client: TestClient) -> None:
    r = client.post("/jobs", content=b"{nope", headers={"content-type": "application/json"})
    assert_problem(r, 400, "invalid-json")
    r = client.post("/jobs", content=b'{"kind": NaN}', headers={"content-type": "application/json"})
    assert_problem(r, 400, "invalid-json")
    r = client.post("/jobs", content=b"kind=add", headers={"content-type": "text/plain"})
    assert_problem(r, 415, "unsupported-media-type")


def test_body_over_the_limit_is_413(app: Offload, make_client: MakeClient) -> None:
    c = make_client(app, max_body_bytes=2048)
    r = c.post("/jobs", json={"kind": "js.add", "args": {"blob": "x" * 4000}})
    assert_problem(r, 413, "payload-too-large")


def test_arguments_over_the_app_limit_are_413(client: TestClient, app: Offload) -> None:
    big = "x" * (app.config.max_payload_bytes + 10)
    r = client.post("/jobs", json={"kind": "js.add", "args": {"blob": big}})
    assert_problem(r, 413, "payload-too-large")


# --- idempotency -----------------------------------------------------------------------
def test_idempotency_key_returns_the_first_job(client: TestClient) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first = client.post("/jobs", json={"kind": "add", "args": {"a": 1, "b": 1}}, headers=headers)
    again = client.post("/jobs", json={"kind": "add", "args": {"a": 1, "b": 1}}, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.headers["location"] == again.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert first.json()["unique_key"] == "idem:order-42"
    assert len(client.get("/jobs").json()["jobs"]) == 1


def test_idempotency_key_reused_for_another_request_is_422(client: TestClient) -> None:
    headers = {"Idempotency-Key": "k1"}
    enqueue(client, "add", headers=headers)
    r = client.post("/jobs", json={"kind": "add", "args": {"a": 9, "b": 9}}, headers=headers)
    assert_problem(r, 422, "idempotency-key-reused")


def test_bad_idempotency_key_is_400(client: TestClient) -> None:
    r = client.post(
        "/jobs",
        json={"kind": "add", "args": {"a": 1, "b": 1}},
        headers={"Idempotency-Key": "x" * 201},
    )
    assert_problem(r, 400, "invalid-parameter")


# --- Expect: 200-ok --------------------------------------------------------------------
def _complete_next(client: TestClient, result: Any, queue: str = "default") -> None:
    """Play an HTTP worker: wait for a job to appear, then complete it."""
    jobs = wait_until(lambda: fetch(client, [queue]), what="a job to fetch")
    r = client.post(
        "/worker/complete", json={"id": jobs[0]["id"], "token": jobs[0]["token"], "result": result}
    )
    assert r.status_code == 200, r.text


def test_expect_200_ok_waits_for_the_result(app: Offload, make_client: MakeClient) -> None:
    client = make_client(app, max_wait=30.0)
    worker = threading.Thread(target=_complete_next, args=(client, 3))
    worker.start()
    r = client.post(
        "/jobs",
        json={"kind": "add", "args": {"a": 1, "b": 2}},
        headers={"Expect": "200-ok", "Prefer": "wait=20"},
    )
    worker.join(30)
    assert r.status_code == 200, r.text
    assert r.json()["result"] == 3 and r.json()["state"] == "completed"
    assert r.headers["location"] == f"/jobs/{r.json()['id']}"


def test_expect_200_ok_times_out_with_417_and_the_job_exists(client: TestClient) -> None:
    r = client.post(
        "/jobs",
        json={"kind": "add", "args": {"a": 1, "b": 2}},
        headers={"Expect": "200-ok", "Prefer": "wait=0"},
    )
    body = assert_problem(r, 417, "expectation-failed")
    assert body["state"] == "available"
    assert client.get(r.headers["location"]).json()["state"] == "available"


def test_expect_200_ok_on_a_job_that_ends_dead_is_417(client: TestClient) -> None:
    job = enqueue(client, "explode", args={})
    claimed = fetch(client)
    client.post(
        "/worker/fail", json={"id": claimed[0]["id"], "token": claimed[0]["token"], "error": "x"}
    )
    r = client.get(f"/jobs/{job['id']}", headers={"Expect": "200-ok"})
    assert assert_problem(r, 417, "expectation-failed")["state"] == "dead"


def test_unknown_expectation_is_417_before_anything_is_created(client: TestClient) -> None:
    r = client.post(
        "/jobs", json={"kind": "add", "args": {"a": 1, "b": 2}}, headers={"Expect": "teapot"}
    )
    assert_problem(r, 417, "expectation-failed")
    assert client.get("/jobs").json()["jobs"] == []


def test_prefer_wait_is_capped_and_unreadable_waits_are_ignored(
    app: Offload, make_client: MakeClient
) -> None:
    c = make_client(app, max_wait=0.1)
    for prefer in ("wait=soon", "respond-async, wait=-1", "wait=3600"):
        r = c.post(
            "/jobs",
            json={"kind": "add", "args": {"a": 1, "b": 2}},
            headers={"Expect": "200-ok", "Prefer": prefer},
        )
        assert_problem(r, 417, "expectation-failed")


def test_expect_on_get_waits_for_a_completed_job(client: TestClient) -> None:
    job = enqueue(client)
    _complete_next(client, {"sum": 3})
    r = client.get(f"/jobs/{job['id']}", headers={"Expect": "200-ok"})
    assert r.status_code == 200 and r.json()["result"] == {"sum": 3}


def test_waiting_requests_are_bounded_with_503(app: Offload, make_client: MakeClient) -> None:
    c = make_client(app, max_waiters=1, max_wait=1.0)
    c.app.state.offload.result_waits.used = 1  # type: ignore[attr-defined]
    r = c.post(
        "/jobs", json={"kind": "add", "args": {"a": 1, "b": 2}}, headers={"Expect": "200-ok"}
    )
    assert_problem(r, 503, "overloaded")
    assert r.headers["retry-after"]


# --- GET /jobs/{id} and its result -----------------------------------------------------
def test_get_job_and_303_once_completed(client: TestClient) -> None:
    job = enqueue(client)
    r = client.get(f"/jobs/{job['id']}")
    assert r.status_code == 200 and r.json()["id"] == job["id"]
    assert_problem(client.get(f"/jobs/{job['id']}/result"), 404, "result-not-ready")
    _complete_next(client, 3)
    r = client.get(f"/jobs/{job['id']}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/jobs/{job['id']}/result"
    r = client.get(f"/jobs/{job['id']}")  # followed
    assert r.json() == {**r.json(), "id": job["id"], "result": 3, "state": "completed"}


def test_missing_jobs_are_404(client: TestClient) -> None:
    assert_problem(client.get("/jobs/999999"), 404, "job-not-found")
    assert_problem(client.get("/jobs/999999/result"), 404, "job-not-found")
    assert_problem(client.post("/jobs/999999/retry"), 404, "job-not-found")
    assert_problem(client.post("/jobs/999999/cancel"), 404, "job-not-found")
    assert_problem(client.get("/jobs/0"), 400, "invalid-parameter")
    assert_problem(client.get(f"/jobs/{2**64}"), 400, "invalid-parameter")
    assert_problem(client.get("/jobs/abc"), 404, "not-found")


def test_result_of_a_dead_job_is_410(client: TestClient) -> None:
    job = enqueue(client, "explode", args={})
    claimed = fetch(client)[0]
    client.post(
        "/worker/fail", json={"id": claimed["id"], "token": claimed["token"], "error": "kaput"}
    )
    body = assert_problem(client.get(f"/jobs/{job['id']}/result"), 410, "no-result")
    assert body["state"] == "dead" and "kaput" in body["detail"]
    got = client.get(f"/jobs/{job['id']}").json()
    assert got["state"] == "dead" and got["errors"][0]["error"] == "kaput"


# --- GET /jobs -------------------------------------------------------------------------
def test_list_filters_and_pages(client: TestClient) -> None:
    ids = [enqueue(client)["id"] for _ in range(5)]
    welcome = enqueue(client, "send_welcome", args={"user_id": 1})["id"]
    r = client.get("/jobs", params={"kind": "add", "limit": 2})
    page = r.json()
    assert [j["id"] for j in page["jobs"]] == ids[::-1][:2]
    assert r.headers["link"] == f'<{page["next"]}>; rel="next"'
    seen = [j["id"] for j in page["jobs"]]
    while page["next"]:
        page = client.get(page["next"]).json()
        seen += [j["id"] for j in page["jobs"]]
    assert seen == ids[::-1]
    assert [j["id"] for j in client.get("/jobs?queue=emails").json()["jobs"]] == [welcome]
    assert len(client.get("/jobs?state=available&state=running").json()["jobs"]) == 6
    assert client.get("/jobs?state=dead").json() == {"jobs": [], "next": None}


@pytest.mark.parametrize(
    "query",
    [
        "state=nope",
        "limit=0",
        "limit=501",
        "limit=x",
        "before=-1",
        "status=dead",
        "queue=a%20b",
        "limit=1&limit=2",
    ],
)
def test_bad_list_parameters_are_400(client: TestClient, query: str) -> None:
    assert_problem(client.get(f"/jobs?{query}"), 400, "invalid-parameter")


# --- retry and cancel ------------------------------------------------------------------
def test_retry_a_dead_job_then_409_while_available(client: TestClient) -> None:
    job = enqueue(client, "explode", args={})
    claimed = fetch(client)[0]
    client.post("/worker/fail", json={"id": claimed["id"], "token": claimed["token"], "error": "x"})
    r = client.post(f"/jobs/{job['id']}/retry")
    assert r.status_code == 200 and r.json()["state"] == "available"
    body = assert_problem(client.post(f"/jobs/{job['id']}/retry"), 409, "not-retryable")
    assert body["state"] == "available"


def test_cancel_then_409_once_cancelled(client: TestClient) -> None:
    job = enqueue(client)
    r = client.post(f"/jobs/{job['id']}/cancel")
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert_problem(client.post(f"/jobs/{job['id']}/cancel"), 409, "not-cancellable")
    enqueue(client)
    running = fetch(client)[0]
    assert_problem(client.post(f"/jobs/{running['id']}/retry"), 409, "not-retryable")
    # A running job is asked to stop (docs/long-jobs.md): it shows the request until it does.
    r = client.post(f"/jobs/{running['id']}/cancel")
    assert r.status_code == 200
    assert (r.json()["state"], r.json()["stop_request"]) == ("running", "cancel")


def test_discard_deletes_a_job_then_404(client: TestClient) -> None:
    job = enqueue(client)
    r = client.delete(f"/jobs/{job['id']}")
    assert r.status_code == 204 and r.content == b""
    assert_problem(client.get(f"/jobs/{job['id']}"), 404, "job-not-found")
    assert_problem(client.delete(f"/jobs/{job['id']}"), 404, "job-not-found")
    assert client.get("/jobs").json()["jobs"] == []


def test_discard_of_a_running_job_fences_off_its_worker(client: TestClient) -> None:
    enqueue(client)
    running = fetch(client)[0]
    assert client.delete(f"/jobs/{running['id']}").status_code == 204
    lease = {"id": running["id"], "token": running["token"]}
    beat = client.post("/worker/heartbeat", json={"leases": [lease]})
    assert beat.json() == {"lost": [running["id"]]}
    done = client.post("/worker/complete", json={**lease, "result": 3})
    assert_problem(done, 409, "stale-lease")
    assert_problem(client.post("/worker/fail", json={**lease, "error": "x"}), 409, "stale-lease")


@pytest.mark.parametrize(("path", "status"), [("/jobs/0", 400), (f"/jobs/{2**63}", 400)])
def test_discard_with_a_bad_id_is_400(client: TestClient, path: str, status: int) -> None:
    assert_problem(client.delete(path), status, "invalid-parameter")


def test_discard_needs_admin(secured: TestClient) -> None:
    job = enqueue(secured, headers=bearer("admin"))
    assert_problem(secured.delete(f"/jobs/{job['id']}"), 401, "unauthorized")
    for role in ("read", "enqueue", "worker"):
        assert_problem(secured.delete(f"/jobs/{job['id']}", headers=bearer(role)), 403, "forbidden")
    assert secured.delete(f"/jobs/{job['id']}", headers=bearer("admin")).status_code == 204


# --- queues and kinds ------------------------------------------------------------------
def test_queues_count_jobs_by_state(client: TestClient) -> None:
    enqueue(client)
    enqueue(client)
    fetch(client, limit=1, worker="w-q")
    queues = {q["name"]: q for q in client.get("/queues").json()["queues"]}
    assert set(queues) >= {"default", "emails", "node"}
    assert queues["default"]["depth"] == 1 and queues["default"]["counts"]["running"] == 1
    assert queues["default"]["workers"] == 1 and queues["emails"]["depth"] == 0


def test_kinds_list_declared_and_external(client: TestClient) -> None:
    kinds = {k["name"]: k for k in client.get("/kinds").json()["kinds"]}
    assert kinds["send_welcome"]["declared"] is True
    assert kinds["send_welcome"]["parameters"] == [
        {"name": "user_id", "required": True, "annotation": "int"},
        {"name": "locale", "required": False, "annotation": "str"},
    ]
    assert kinds["js.add"] == {**kinds["js.add"], "declared": False, "queue": "node"}


# --- routing and server errors ---------------------------------------------------------
def test_unknown_paths_and_methods_are_problems(client: TestClient) -> None:
    assert_problem(client.get("/nowhere"), 404, "not-found")
    r = client.delete("/jobs")
    assert_problem(r, 405, "method-not-allowed")
    assert r.headers["allow"] == "GET, HEAD, POST"


def test_store_busy_is_503_with_retry_after(
    client: TestClient, app: Offload, monkeypatch: pytest.MonkeyPatch
) -> None:
    def busy(*args: Any) -> Any:
        raise StoreBusyError("locked")

    monkeypatch.setattr(app.store, "job_list", busy)
    r = client.get("/jobs")
    assert_problem(r, 503, "overloaded")
    assert r.headers["retry-after"] == "2"


def test_load_shedding_refusals_are_503_with_their_retry_after(
    client: TestClient, app: Offload, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Refused(OffloadError):
        retry_after = 2.5

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise Refused("queue 'default' is past its backlog bound")

    monkeypatch.setattr(app.store, "job_insert_many", refuse)
    r = client.post("/jobs", json={"kind": "js.add", "args": {}})
    assert_problem(r, 503, "overloaded")
    assert r.headers["retry-after"] == "3"


def test_unexpected_errors_are_500_without_details(
    client: TestClient, app: Offload, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(app.store, "job_counts", broken)
    r = client.get("/queues")
    body = assert_problem(r, 500, "internal-error")
    assert "secret" not in r.text and body["instance"] == "/queues"


def test_health_and_problem_pages(
    client: TestClient, app: Offload, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "store": app.store.engine}
    page = client.get("/problems/unknown-kind")
    assert page.status_code == 200 and "Unknown job kind" in page.text
    assert_problem(client.get("/problems/nope"), 404, "not-found")

    def down() -> Any:
        raise OSError("down")

    monkeypatch.setattr(app.store, "now", down)
    assert_problem(client.get("/healthz"), 503, "store-unavailable")
