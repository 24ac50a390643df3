"""Scoped tokens (issue 16, item 4): tenant isolation on every route, the queues and kinds a
token may fetch and enqueue, redacted arguments and results, worker record ownership, and
tokens kept as hashes."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from offload import Offload
from offload.server import ExternalKind, Token, create_app, hash_token
from offload.server._config import parse_tokens

from ._helpers import BASE, TOKENS, assert_problem, declare

ACME_ADMIN = Token("acme-admin", "admin", "acme-admin-token-0123456789", tenants=("acme",))
ACME_READ = Token("acme-read", "read", "acme-read-token-0123456789", tenants=("acme",))
ACME_PRODUCER = Token("acme-enq", "enqueue", "acme-enqueue-token-012345", tenants=("acme",))
MAILER = Token(
    "mailer", "worker", "mailer-token-0123456789abc", queues=("emails",), kinds=("send_welcome",)
)
ADDER = Token("adder", "enqueue", "adder-token-0123456789abcd", queues=("default",), kinds=("add",))
BLIND = Token("blind", "read", "blind-token-0123456789abcd", data=False)
RUNNER2 = Token("runner2", "worker", "runner2-token-0123456789ab")
HASHED_SECRET = "hashed-token-0123456789abcdef"
HASHED = Token("hashed", "admin", hash_token(HASHED_SECRET))
SCOPED = (ACME_ADMIN, ACME_READ, ACME_PRODUCER, MAILER, ADDER, BLIND, RUNNER2, HASHED)
OPS = next(t for t in TOKENS if t.role == "admin")
RUNNER = next(t for t in TOKENS if t.role == "worker")
B_SECRET = "globex-secret-argument"
PUBLIC = {"/openapi.json", "/healthz", "/problems/{slug}", "/ui/login", "/static"}


def auth(token: Token, secret: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret or token.secret}"}


@pytest.fixture
def scoped_app(sqlite_url: str) -> Iterator[Offload]:
    application = declare(Offload(sqlite_url, lease_seconds=30))

    @application.job(queue="billing", tenant="{shop}")
    def charge(shop: str, note: str = "") -> str:
        return f"charged {shop}"

    yield application
    application.close()


@pytest.fixture
def c(scoped_app: Offload) -> Iterator[TestClient]:
    kinds = (ExternalKind("js.add", "node"), ExternalKind("js.mail", "emails"))
    asgi = create_app(
        scoped_app,
        tokens=(*TOKENS, *SCOPED),
        external_kinds=kinds,
        max_wait=2.0,
        counts_cache_seconds=0.0,
    )
    with TestClient(asgi, base_url=BASE) as client:
        yield client


def _enqueue(client: TestClient, token: Token, kind: str, args: dict[str, Any]) -> Any:
    return client.post("/jobs", json={"kind": kind, "args": args}, headers=auth(token))


def _routes(client: TestClient, job_id: int) -> list[tuple[str, str, str]]:
    """(method, template, path) of every route of the router table, ids filled in: a route
    added later is swept without a change here."""
    out = []
    for route in client.app.routes:  # type: ignore[attr-defined]
        if isinstance(route, Mount):
            out.append(("GET", route.path, f"{route.path}/dashboard.css"))
            continue
        assert isinstance(route, Route), route
        path = re.sub(r"\{job_id(:\w+)?\}", str(job_id), route.path)
        path = re.sub(r"\{rule_id(:\w+)?\}", "1", path)
        path = re.sub(r"\{slug(:\w+)?\}", "forbidden", path)
        path = re.sub(r"\{\w+(:\w+)?\}", "default", path)  # a queue's, a kind's, a topic's name
        for method in sorted(route.methods or ["GET"]):
            if method != "HEAD":
                out.append((method, route.path, path))
    return out


# --- tenant isolation -----------------------------------------------------------------------
def test_a_tenant_token_never_sees_counts_or_changes_another_tenants_jobs(c: TestClient) -> None:
    theirs = _enqueue(c, OPS, "charge", {"shop": "globex", "note": B_SECRET}).json()
    ours = _enqueue(c, OPS, "charge", {"shop": "acme", "note": "ours"}).json()
    rule = c.post("/rules", json={"kind": "charge", "reason": "x"}, headers=auth(OPS))
    assert rule.status_code in (200, 201), rule.text
    before = c.get(f"/jobs/{theirs['id']}", headers=auth(OPS)).json()
    allowed = {("GET", "/jobs"), ("POST", "/jobs"), ("GET", "/ui/jobs"), ("POST", "/ui/logout")}
    swept = 0
    for token in (ACME_ADMIN, ACME_READ):
        for method, template, path in _routes(c, theirs["id"]):
            if template in PUBLIC:
                continue
            swept += 1
            r = c.request(
                method,
                path,
                headers={**auth(token), "Prefer": "wait=0"},
                json={} if method in ("POST", "PUT") else None,
                follow_redirects=False,
            )
            where = (token.name, method, path, r.status_code, r.text[:200])
            assert B_SECRET not in r.text, where
            assert f'"id":{theirs["id"]}' not in r.text.replace(" ", ""), where
            if (method, template) in allowed:
                continue
            if "{job_id" in template and method == "GET":
                assert r.status_code == 404, where  # as if it did not exist
            else:  # refused, or an empty body refused: never a success
                assert r.status_code in (400, 401, 403, 404, 415, 422), where
    assert swept > 40
    after = c.get(f"/jobs/{theirs['id']}", headers=auth(OPS)).json()
    assert after == before  # unchanged by every route
    # Lists hold only the tenant's jobs; a job of theirs is there in full.
    listed = c.get("/jobs", headers=auth(ACME_READ)).json()["jobs"]
    assert [j["id"] for j in listed] == [ours["id"]]
    found = c.get("/jobs", params={"args_contain": "globex"}, headers=auth(ACME_READ)).json()[
        "jobs"
    ]
    assert found == []
    assert c.get(f"/jobs/{ours['id']}", headers=auth(ACME_READ)).json()["args"]["note"] == "ours"
    page = c.get("/ui/jobs", headers=auth(ACME_READ))
    assert page.status_code == 200 and B_SECRET not in page.text
    assert f"/ui/jobs/{ours['id']}" in page.text and f'/ui/jobs/{theirs["id"]}"' not in page.text
    # Counts span tenants: refused, not shown.
    for path in ("/queues", "/metrics", "/", "/ui/queues", "/rules"):
        assert c.get(path, headers=auth(ACME_READ)).status_code == 403, path


def test_a_tenant_producer_enqueues_for_its_tenant_only(c: TestClient) -> None:
    assert _enqueue(c, ACME_PRODUCER, "charge", {"shop": "acme"}).status_code == 202
    assert_problem(_enqueue(c, ACME_PRODUCER, "charge", {"shop": "globex"}), 403, "forbidden")
    free = _enqueue(c, ACME_PRODUCER, "js.add", {"a": 1})  # a kind without a tenant: ours
    assert free.status_code == 202, free.text
    record = c.app.state.offload.app.store.job_get(free.json()["id"])  # type: ignore[attr-defined]
    assert record.tenant == "acme"
    assert c.get(f"/jobs/{free.json()['id']}", headers=auth(ACME_READ)).status_code == 200


def test_a_tenant_session_cannot_press_another_tenants_buttons(c: TestClient) -> None:
    theirs = _enqueue(c, OPS, "charge", {"shop": "globex"}).json()
    ours = _enqueue(c, OPS, "charge", {"shop": "acme"}).json()
    login = c.post("/ui/login", data={"token": ACME_ADMIN.secret}, follow_redirects=False)
    assert login.headers["location"] == "/ui/jobs"  # not the overview, which it may not see
    page = c.get("/ui/jobs")
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert page.status_code == 200 and csrf is not None, page.text[:300]
    for action in ("retry", "cancel", "discard"):
        r = c.post(f"/ui/jobs/{theirs['id']}/{action}", data={"csrf": csrf.group(1)})
        assert r.status_code == 404, (action, r.status_code)
    assert c.get(f"/jobs/{theirs['id']}", headers=auth(OPS)).json()["state"] == "available"
    done = c.post(
        f"/ui/jobs/{ours['id']}/cancel", data={"csrf": csrf.group(1)}, follow_redirects=False
    )
    assert done.status_code == 303  # its own tenant's job: the button works
    assert c.get(f"/jobs/{ours['id']}", headers=auth(OPS)).json()["state"] == "cancelled"


# --- queues and kinds -----------------------------------------------------------------------
def test_a_producer_enqueues_only_its_queues_and_kinds(c: TestClient) -> None:
    assert _enqueue(c, ADDER, "add", {"a": 1, "b": 2}).status_code == 202
    assert_problem(_enqueue(c, ADDER, "send_welcome", {"user_id": 1}), 403, "forbidden")
    moved = c.post(
        "/jobs",
        json={"kind": "add", "args": {"a": 1, "b": 2}, "queue": "emails"},
        headers=auth(ADDER),
    )
    assert_problem(moved, 403, "forbidden")
    assert [j["kind"] for j in c.get("/jobs", headers=auth(OPS)).json()["jobs"]] == ["add"]


def test_a_worker_fetches_only_its_queues_and_kinds(c: TestClient) -> None:
    mail = _enqueue(c, OPS, "js.mail", {"to": "x"}).json()
    welcome = _enqueue(c, OPS, "send_welcome", {"user_id": 7}).json()
    other = c.post(
        "/worker/fetch", json={"worker": "m1", "queues": ["default"]}, headers=auth(MAILER)
    )
    assert_problem(other, 403, "forbidden")
    got = c.post(
        "/worker/fetch",
        json={"worker": "m1", "queues": ["emails"], "limit": 10},
        headers=auth(MAILER),
    )
    assert got.status_code == 200, got.text
    assert [j["id"] for j in got.json()["jobs"]] == [welcome["id"]]
    left = c.get(f"/jobs/{mail['id']}", headers=auth(OPS)).json()
    assert left["state"] == "available" and left["attempt"] == 0  # never handed out
    tenant_worker = c.post(
        "/worker/fetch", json={"worker": "t1", "queues": ["billing"]}, headers=auth(ACME_ADMIN)
    )
    assert_problem(tenant_worker, 403, "forbidden")


# --- arguments and results ------------------------------------------------------------------
def test_a_token_without_data_sees_neither_arguments_nor_results(c: TestClient) -> None:
    job = _enqueue(c, OPS, "js.add", {"secret": B_SECRET}).json()
    got = c.post("/worker/fetch", json={"worker": "w", "queues": ["node"]}, headers=auth(RUNNER))
    lease = got.json()["jobs"][0]
    done = {"id": job["id"], "token": lease["token"], "result": {"answer": B_SECRET}}
    assert c.post("/worker/complete", json=done, headers=auth(RUNNER)).status_code == 200
    for path in (
        f"/jobs/{job['id']}",
        f"/jobs/{job['id']}/result",
        "/jobs",
        f"/ui/jobs/{job['id']}",
    ):
        r = c.get(path, headers=auth(BLIND))
        assert r.status_code == 200, (path, r.text)
        assert B_SECRET not in r.text, path
    assert c.get(f"/jobs/{job['id']}/result", headers=auth(BLIND)).json()["result"] == "***"
    events = c.get(f"/jobs/{job['id']}/events", headers=auth(BLIND))  # a final job: one event
    assert events.status_code == 200 and "job.completed" in events.text
    assert B_SECRET not in events.text and "***" in events.text
    listed = c.get("/jobs", headers=auth(BLIND)).json()["jobs"][0]
    assert listed["args"] == {"secret": "***"}
    assert_problem(
        c.get("/jobs", params={"args_contain": "glob"}, headers=auth(BLIND)), 403, "forbidden"
    )
    assert c.get(f"/jobs/{job['id']}/result", headers=auth(OPS)).json()["result"] == {
        "answer": B_SECRET
    }


# --- worker records -------------------------------------------------------------------------
def test_a_worker_may_only_touch_its_own_record(c: TestClient) -> None:
    store = c.app.state.offload.app.store  # type: ignore[attr-defined]
    body = {"worker": "w-own", "queues": ["default"], "host": "h1"}
    assert c.post("/worker/fetch", json=body, headers=auth(RUNNER)).status_code == 200
    assert [w.id for w in store.worker_list(60)] == ["w-own"]
    for path, payload in [
        ("/worker/fetch", {**body, "host": "evil"}),
        ("/worker/heartbeat", {"worker": "w-own", "leases": [], "host": "evil"}),
        ("/worker/release", {"worker": "w-own", "leases": [], "goodbye": True}),
    ]:
        r = c.post(path, json=payload, headers=auth(RUNNER2))
        assert_problem(r, 403, "forbidden")
    assert [(w.id, w.host) for w in store.worker_list(60)] == [("w-own", "h1")]
    # Its own token may say goodbye.
    bye = {"worker": "w-own", "leases": [], "goodbye": True}
    assert c.post("/worker/release", json=bye, headers=auth(RUNNER)).status_code == 200
    assert store.worker_list(60) == []


def test_worker_ownership_holds_across_replicas(c: TestClient, scoped_app: Offload) -> None:
    body = {"worker": "w-far", "queues": ["default"]}
    assert c.post("/worker/fetch", json=body, headers=auth(RUNNER)).status_code == 200
    other = create_app(scoped_app, tokens=(*TOKENS, *SCOPED))  # another server process
    with TestClient(other, base_url=BASE) as replica:
        r = replica.post("/worker/heartbeat", json={**body, "leases": []}, headers=auth(RUNNER2))
        assert_problem(r, 403, "forbidden")
        r = replica.post("/worker/fetch", json=body, headers=auth(RUNNER))
        assert r.status_code == 200, r.text


# --- hashed tokens --------------------------------------------------------------------------
def test_a_hashed_token_works_and_the_server_keeps_no_token(c: TestClient) -> None:
    assert c.get("/jobs", headers=auth(HASHED, HASHED_SECRET)).status_code == 200
    assert c.get("/jobs", headers=auth(HASHED, HASHED.secret)).status_code == 401  # not the hash
    login = c.post("/ui/login", data={"token": HASHED_SECRET}, follow_redirects=False)
    assert login.status_code == 303
    assert c.get("/ui/jobs").status_code == 200
    kept = c.app.state.offload.auth  # type: ignore[attr-defined]
    assert all(HASHED_SECRET not in repr(v) for v in vars(kept).values())


def test_tokens_file_takes_hashes_and_scopes() -> None:
    hashed = hash_token("plain-token-0123456789")
    text = (
        f"ci:worker:{hashed} queues=emails|sms kinds=send_welcome\n"
        "shop:read:plain-token-abcdefghijkl tenants=acme data=no\n"
        "old:admin:old-token-0123456789abcdef\n"
    )
    ci, shop, old = parse_tokens(text, "test")
    assert ci.secret == hashed and ci.queues == ("emails", "sms") and ci.kinds == ("send_welcome",)
    assert ci.tenants is None and ci.data
    assert shop.tenants == ("acme",) and not shop.data
    assert old.queues is old.kinds is old.tenants is None and old.data  # unscoped, as before
    assert shop.hashed == hash_token("plain-token-abcdefghijkl")
    for bad in (
        "x:read:sha256:abc",
        "x:read:plain-token-abcdefghijkl color=red",
        "x:read:plain-token-abcdefghijkl data=maybe",
        "x:read:plain-token-abcdefghijkl tenants=a\\nb",
    ):
        with pytest.raises(Exception, match="x"):
            parse_tokens(bad, "test")


def test_offload_hash_token_prints_the_hash_form() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "offload", "hash-token"],
        input="plain-token-0123456789\n",
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == hash_token("plain-token-0123456789")
