"""Bad input gets a 4xx problem, never a 500, before and after authentication: lone surrogates
and NUL in every text field, ids too long to convert, session cookies with non-ASCII text, and
names with a trailing newline."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from offload import Offload
from offload.server import ExternalKind, create_app

from ._helpers import BASE, TOKENS, bearer, enqueue, fetch

LONG_ID = "9" * 5000  # past int()'s 4,300-digit limit


def _raw(client: TestClient, path: str, body: str, headers: dict[str, str]) -> Any:
    return client.post(
        path, content=body.encode(), headers={"content-type": "application/json", **headers}
    )


def _is_4xx(response: Any) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("tokens", [False, True], ids=["local", "tokens"])
def test_bad_text_is_refused(app: Offload, tokens: bool) -> None:
    server = create_app(
        app, tokens=TOKENS if tokens else (), external_kinds=(ExternalKind("js.add", "node"),)
    )
    with TestClient(server, base_url=BASE, raise_server_exceptions=False) as client:
        admin = bearer("admin") if tokens else {}
        worker = bearer("worker") if tokens else {}
        for path, body, headers in [
            ("/jobs", '{"kind": "add", "args": {"a": "\\ud800", "b": 1}}', admin),
            ("/jobs", '{"kind": "js.add", "args": {"\\udc00": 1}}', admin),
            ("/jobs", '{"kind": "add", "args": {"a": 1, "b": 1}, "meta": {"x": "\\ud800"}}', admin),
            ("/jobs", '{"kind": "js.add", "args": {}, "queue": "default\\n"}', admin),
            ("/rules", '{"kind": "add", "where": "args.a == \\"\\ud800\\""}', admin),
            ("/rules", '{"kind": "add", "reason": "\\ud800"}', admin),
            ("/rules", '{"kind": "add\\n"}', admin),
            ("/worker/fetch", '{"queues": ["default"], "worker": "w", "host": "\\ud800"}', worker),
            (
                "/worker/fetch",
                '{"queues": ["default"], "worker": "w", "host": "a\\u0000b"}',
                worker,
            ),
            ("/worker/fetch", '{"queues": ["default\\n"], "worker": "w"}', worker),
        ]:
            _is_4xx(_raw(client, path, body, headers))
        job_id = enqueue(client, headers=admin)["id"]
        claimed = fetch(client, headers=worker, wait=0)
        assert claimed and claimed[0]["id"] == job_id
        body = f'{{"id": {job_id}, "token": {claimed[0]["token"]}, "result": "\\ud800"}}'
        _is_4xx(_raw(client, "/worker/complete", body, worker))
        # Ids past any route's range, before and after authentication.
        for headers in ({}, admin):
            for method, path in [
                ("GET", f"/jobs/{LONG_ID}"),
                ("GET", f"/ui/jobs/{LONG_ID}"),
                ("POST", f"/jobs/{LONG_ID}/cancel"),
                ("DELETE", f"/rules/{LONG_ID}"),
            ]:
                _is_4xx(client.request(method, path, headers=headers))


def test_session_cookies_with_non_ascii_text(secured: TestClient) -> None:
    admin = next(t for t in TOKENS if t.role == "admin")
    for value in (
        f"{admin.name}.\xb2\xb3.abc".encode("latin-1"),  # superscript digits: isdigit() but no int
        f"{admin.name}.9999999999.\xe9\xe9".encode("latin-1"),
        f"{admin.name}.9999999999.x-\xe9".encode(),
        "\xe9.1.x".encode(),
    ):
        r = secured.get("/jobs", headers={"cookie": b"offload_session=" + value})  # type: ignore[dict-item]
        assert r.status_code == 401, (value, r.status_code, r.text)
        r = secured.get(
            "/ui/jobs", headers={"cookie": b"offload_session=" + value}, follow_redirects=False
        )  # type: ignore[dict-item]
        assert r.status_code == 303, (value, r.status_code, r.text)
