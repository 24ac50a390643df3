"""Shared helpers of the server tests: tokens, job types, and protocol shortcuts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from offload import Exponential, Offload
from offload.server import Token

BASE = "http://127.0.0.1:8750"
SECRET_ARG = "s3cr3t-argument-value"
TOKENS = (
    Token("viewer", "read", "read-token-0123456789abcdef"),
    Token("producer", "enqueue", "enqueue-token-0123456789abcdef"),
    Token("runner", "worker", "worker-token-0123456789abcdef"),
    Token("ops", "admin", "admin-token-0123456789abcdef"),
)


def bearer(role: str) -> dict[str, str]:
    token = next(t for t in TOKENS if t.role == role)
    return {"Authorization": f"Bearer {token.secret}"}


def declare(app: Offload) -> Offload:
    """The job types the server tests use."""

    @app.job(queue="emails", max_attempts=3, backoff=7)
    def send_welcome(user_id: int, locale: str = "en") -> str:
        return f"sent {user_id} {locale}"

    @app.job(queue="default", backoff=Exponential(base=100, jitter=0))
    def add(a: int, b: int) -> int:
        return a + b

    @app.job(queue="default", max_attempts=1)
    def explode() -> None:
        raise RuntimeError("boom")

    return app


MakeClient = Callable[..., TestClient]


def enqueue(
    client: TestClient, kind: str = "add", headers: dict[str, str] | None = None, **body: Any
) -> dict[str, Any]:
    body.setdefault("args", {"a": 1, "b": 2} if kind == "add" else {})
    r = client.post("/jobs", json={"kind": kind, **body}, headers=headers or {})
    assert r.status_code == 202, r.text
    data: dict[str, Any] = r.json()
    return data


def fetch(
    client: TestClient,
    queues: list[str] | None = None,
    headers: dict[str, str] | None = None,
    **body: Any,
) -> list[dict[str, Any]]:
    body.setdefault("worker", "test-worker")
    r = client.post(
        "/worker/fetch", json={"queues": queues or ["default"], **body}, headers=headers or {}
    )
    assert r.status_code == 200, r.text
    jobs: list[dict[str, Any]] = r.json()["jobs"]
    return jobs


def assert_problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    """The response is a problem document of this status and type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["type"] == f"/problems/{slug}", body
    assert body["status"] == status
    assert body["title"] and body["detail"]
    return body
