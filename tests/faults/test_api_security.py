"""The HTTP API and dashboard against hostile requests (catalogue G2-G5, G7), over every route
of the router table rather than a list kept by hand.

- G2: every route but the public ones refuses a request without a valid token: none, a wrong
  one, the right one a byte off, another scheme; path tricks reach nothing; tokens are
  compared in constant time. (A server without tokens refuses to listen beyond loopback:
  tests/server/test_cli.py.)
- G3: no response allows another origin (no CORS headers, preflights included); a dashboard
  session cannot be ridden by a form or a script of another site.
- G4: arguments and error messages carrying markup come out escaped on every page, under a
  Content-Security-Policy that forbids inline scripts.
- G5: parameters that would make a request expensive are refused, not obeyed.
- G7 (in part: offload has no payload encryption): job arguments never reach a worker's log or
  the metrics.

HTTP security does not depend on the store's engine: these run on SQLite.
"""

from __future__ import annotations

import inspect
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from offload import Offload
from offload.server import ExternalKind, create_app
from offload.server import _auth as auth
from tests.integration._harness import Procs, all_jobs, wait_until
from tests.server._helpers import BASE, SECRET_ARG, TOKENS, bearer, declare, enqueue, fetch

from .faultapp import make_app

PUBLIC = {"/openapi.json", "/healthz", "/problems/{slug}", "/ui/login"}
ADMIN = next(t for t in TOKENS if t.role == "admin").secret
MARKUP = ["<script>alert(1)</script>", '"><svg onload=alert(1)>', "javascript:alert(1)"]


@pytest.fixture
def server_app(sqlite_url: str) -> Iterator[Offload]:
    application = declare(Offload(sqlite_url, lease_seconds=30))
    yield application
    application.close()


def _client(application: Offload, **options: Any) -> Iterator[TestClient]:
    options.setdefault("external_kinds", (ExternalKind("js.add", "node"),))
    with TestClient(create_app(application, **options), base_url=BASE) as client:
        yield client


@pytest.fixture
def secured(server_app: Offload) -> Iterator[TestClient]:
    yield from _client(server_app, tokens=TOKENS, max_wait=2.0)


@pytest.fixture
def open_client(server_app: Offload) -> Iterator[TestClient]:
    """A server without tokens (loopback only)."""
    yield from _client(server_app, max_wait=2.0)


def _routes(client: TestClient, job_id: int) -> list[tuple[str, str, str]]:
    """(method, template, path) of every route of the router table, parameters filled in."""
    out = []
    for route in client.app.routes:  # type: ignore[attr-defined]
        if isinstance(route, Mount):
            out.append(("GET", route.path, f"{route.path}/dashboard.css"))
            continue
        assert isinstance(route, Route), route
        path = re.sub(r"\{job_id(:\w+)?\}", str(job_id), route.path)
        path = re.sub(r"\{rule_id(:\w+)?\}", "1", path)
        path = re.sub(r"\{slug(:\w+)?\}", "forbidden", path)
        path = re.sub(r"\{name(:\w+)?\}", "default", path)  # a queue's, kind's or topic's name
        path = re.sub(r"\{workflow_id(:\w+)?\}", "1", path)
        path = re.sub(r"\{partition(:\w+)?\}", "0", path)
        path = re.sub(r"\{group(:\w+)?\}", "analytics", path)
        assert "{" not in path, route.path
        for method in sorted(route.methods or ["GET"]):
            out.append((method, route.path, path))
    return out


def _one_byte_off(secret: str) -> str:
    return secret[:-1] + ("A" if secret[-1] != "A" else "B")


# --- G2 -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "credential",
    [
        None,
        "Bearer wrong-token-0000000000000000",
        f"Bearer {_one_byte_off(ADMIN)}",
        f"Bearer {ADMIN[:-1]}",
        f"bearer{ADMIN}",
        "Bearer ",
        "Basic YWRtaW46YWRtaW4=",
    ],
    ids=["none", "wrong", "byte-off", "prefix", "no-space", "empty", "basic"],
)
def test_every_route_refuses_a_request_without_a_valid_token(
    secured: TestClient, credential: str | None
) -> None:
    job = enqueue(secured, "js.add", args={"secret": SECRET_ARG}, headers=bearer("admin"))
    headers = {} if credential is None else {"Authorization": credential}
    checked = 0
    for method, template, path in _routes(secured, job["id"]):
        r = secured.request(method, path, headers=headers, follow_redirects=False)
        assert SECRET_ARG not in r.text, (method, path)
        if template in PUBLIC or template == "/static":
            continue
        checked += 1
        if r.status_code == 303:  # a dashboard page sends people to log in
            assert r.headers["location"].startswith("/ui/login"), (method, path)
        else:
            assert r.status_code == 401, (method, path, r.status_code, r.text[:200])
    assert checked >= 20
    assert secured.get(f"/jobs/{job['id']}", headers=bearer("read")).status_code == 200


TRICKS = [
    "//jobs",
    "/jobs/",
    "/./jobs",
    "/ui/../jobs",
    "/%2e%2e/jobs",
    "/jobs%2f1",
    "/JOBS",
    "/jobs;x=1",
    "/healthz/../jobs",
    "/static/../../jobs",
    "/static/..%2f..%2fpyproject.toml",
]


def test_path_tricks_reach_nothing_without_a_token(secured: TestClient) -> None:
    enqueue(secured, "js.add", args={"secret": SECRET_ARG}, headers=bearer("admin"))
    for path in TRICKS:
        for method in ("GET", "HEAD", "OPTIONS", "POST"):
            r = secured.request(method, path, follow_redirects=False)
            assert SECRET_ARG not in r.text and "[project]" not in r.text, (method, path)
            assert r.status_code >= 300, (method, path, r.status_code)
            assert "access-control-allow-origin" not in r.headers


def test_tokens_are_compared_in_constant_time() -> None:
    source = inspect.getsource(auth)
    assert "hmac.compare_digest" in inspect.getsource(auth.Auth.token_for)
    assert "compare_digest" in inspect.getsource(auth._same)
    assert not re.search(r"secret\s*==|==\s*\w*secret", source), "a token compared with =="


# --- G3 -------------------------------------------------------------------------------------
EVIL = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}


def test_no_route_allows_another_origin(secured: TestClient) -> None:
    job = enqueue(secured, headers=bearer("admin"))
    for method, _, path in _routes(secured, job["id"]):
        for m in (method, "OPTIONS"):
            if m == "GET" and path.endswith("/events"):
                continue  # an event stream may not end; its OPTIONS is checked
            headers = {**EVIL, **bearer("admin"), "Access-Control-Request-Method": "POST"}
            r = secured.request(m, path, headers=headers, follow_redirects=False)
            leaked = {k for k in r.headers if k.lower().startswith("access-control-allow")}
            assert not leaked, (m, path, leaked)


def _login(client: TestClient) -> None:
    r = client.post("/ui/login", data={"token": ADMIN, "next": "/ui/jobs"}, follow_redirects=False)
    assert r.status_code == 303


def test_a_dashboard_session_cannot_be_ridden_from_another_site(secured: TestClient) -> None:
    job = enqueue(secured, headers=bearer("admin"))
    _login(secured)
    assert secured.get("/ui/jobs").status_code == 200
    # The API takes tokens only: a session cookie enqueues, cancels and discards nothing.
    for method, path, body in [
        ("POST", "/jobs", {"kind": "add", "args": {"a": 1, "b": 2}}),
        ("POST", f"/jobs/{job['id']}/cancel", None),
        ("DELETE", f"/jobs/{job['id']}", None),
        ("POST", "/rules", {"kind": "add"}),
    ]:
        for headers in ({}, EVIL):
            r = secured.request(method, path, json=body, headers=headers)
            assert r.status_code in (401, 403), (method, path, headers, r.status_code)
        r = secured.request(method, path, data={"kind": "add"}, headers=EVIL)
        assert r.status_code in (401, 403, 415), (method, path, r.status_code)
    # The dashboard's own buttons need its CSRF token and this origin.
    for data, headers in [({}, {}), ({"csrf": "0" * 64}, {}), ({"csrf": "0" * 64}, EVIL)]:
        r = secured.post(f"/ui/jobs/{job['id']}/cancel", data=data, headers=headers)
        assert r.status_code == 403, (data, headers, r.status_code)
    assert secured.get(f"/jobs/{job['id']}", headers=bearer("read")).json()["state"] == "available"


# --- G4 -------------------------------------------------------------------------------------
def test_markup_in_arguments_and_errors_is_escaped_everywhere(open_client: TestClient) -> None:
    client = open_client
    ids = [enqueue(client, "js.add", args={"name": m, m: 1})["id"] for m in MARKUP]
    for job in fetch(client, queues=["node"], limit=10):
        r = client.post(
            "/worker/fail",
            json={
                "id": job["id"],
                "token": job["token"],
                "error": f"ValueError: {MARKUP[0]} {MARKUP[1]}",
                "traceback": f"Traceback: {MARKUP[1]}",
                "retryable": False,
            },
        )
        assert r.status_code == 200, r.text
    pages = ["/", "/ui/jobs", "/ui/jobs?state=dead", *(f"/ui/jobs/{i}" for i in ids)]
    for page in pages:
        r = client.get(page)
        assert r.status_code == 200, page
        for markup in MARKUP[:2]:
            assert markup not in r.text, (page, markup)
        assert "<svg onload" not in r.text.lower(), page
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp, csp
    for param in ("kind", "queue", "state", "range", "before"):
        r = client.get(f"/ui/jobs?{param}=%3Cscript%3Ealert(1)%3C/script%3E")
        assert MARKUP[0] not in r.text, param
        r = client.get(f"/?{param}=%22%3E%3Csvg%20onload=alert(1)%3E")
        assert MARKUP[1] not in r.text, param


# --- G5 -------------------------------------------------------------------------------------
COSTLY: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/jobs?limit=1000000000", None),
    ("GET", "/jobs?limit=-1", None),
    ("GET", "/jobs?before=99999999999999999999999", None),
    ("GET", "/ui/jobs?before=99999999999999999999999", None),
    ("GET", "/?range=100000d", None),
    ("GET", "/rules?limit=1000000000", None),
    ("POST", "/worker/fetch", {"worker": "w", "queues": ["default"], "limit": 10**9}),
    ("POST", "/worker/fetch", {"worker": "w", "queues": ["default"], "wait": 10**9}),
    ("POST", "/worker/fetch", {"worker": "w", "queues": ["q"] * 100_000}),
    ("POST", "/worker/fetch", {"worker": "w", "queues": ["default"], "lease_seconds": 1e12}),
    ("POST", "/jobs", {"kind": "add", "args": {"a": 1, "b": 2}, "delay": 1e30}),
    ("POST", "/jobs", {"kind": "add", "args": {"a": 1, "b": 2}, "max_attempts": 10**9}),
]


def test_costly_parameters_are_refused(open_client: TestClient) -> None:
    for method, path, body in COSTLY:
        r = open_client.request(method, path, json=body)
        assert 400 <= r.status_code < 500, (method, path, r.status_code, r.text[:300])
        assert r.headers["content-type"].startswith("application/problem+json"), path


def test_waits_are_capped(open_client: TestClient) -> None:
    job = enqueue(open_client)
    r = open_client.get(
        f"/jobs/{job['id']}", headers={"Expect": "200-ok", "Prefer": "wait=1000000000"}
    )
    assert r.status_code == 417  # after the server's cap (2 s here), not a billion seconds


# --- G7 -------------------------------------------------------------------------------------
def test_job_arguments_never_reach_a_workers_log_or_the_metrics(
    sqlite_url: str, tmp_path: Path
) -> None:
    app = make_app(sqlite_url)
    app.store.migrate()
    folder = tmp_path / "work"
    folder.mkdir()
    procs = Procs(sqlite_url, folder)
    try:
        worker = procs.worker(concurrency=2, app="tests.faults.faultapp:app")
        app.enqueue("work", key=SECRET_ARG)
        app.call("work", max_attempts=1).enqueue(key=SECRET_ARG, seconds=-1.0)  # fails
        wait_until(
            lambda: {j.state for j in all_jobs(app)} == {"completed", "dead"},
            explain=procs.logs,
        )
        worker.signal(signal.SIGKILL)  # drained
        worker.wait_exit()
        assert "failed" in worker.log()  # the failure was logged, without its arguments
        assert SECRET_ARG not in worker.log()
        with TestClient(create_app(app), base_url=BASE) as client:
            assert SECRET_ARG not in client.get("/metrics").text
    finally:
        procs.cleanup()
        app.close()
