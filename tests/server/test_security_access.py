"""Who may reach the server: forwarded requests count as remote, proxy options need tokens,
logging out revokes the session, and a login over HTTPS through a trusted proxy gets a `Secure`
cookie."""

from __future__ import annotations

import re
from typing import Any

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from offload import ConfigurationError, Offload
from offload.cli._server import server
from offload.server._auth import COOKIE
from offload.server._config import ServerConfig

from ._helpers import TOKENS, MakeClient, assert_problem, bearer

ADMIN = next(t for t in TOKENS if t.role == "admin")


@pytest.mark.parametrize(
    "header",
    [
        {"X-Forwarded-For": "203.0.113.9"},
        {"Forwarded": "for=203.0.113.9;proto=https"},
        {"X-Real-IP": "203.0.113.9"},
        {"X-Forwarded-Host": "jobs.example.com"},
    ],
)
def test_without_tokens_forwarded_requests_are_remote(
    sqlite_app: Offload, make_client: MakeClient, header: dict[str, str]
) -> None:
    client = make_client(sqlite_app)
    headers = {"Host": "127.0.0.1", **header}
    assert_problem(client.get("/jobs", headers=headers), 403, "forwarded-request")
    assert_problem(client.get("/", headers=headers), 403, "forwarded-request")
    assert client.get("/jobs", headers={"Host": "127.0.0.1"}).status_code == 200


def test_with_tokens_forwarded_requests_need_a_token(secured: TestClient) -> None:
    headers = {"X-Forwarded-For": "203.0.113.9"}
    assert_problem(secured.get("/jobs", headers=headers), 401, "unauthorized")
    assert secured.get("/jobs", headers={**headers, **bearer("read")}).status_code == 200


def _run(args: list[str], env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(server, args, env={"OFFLOAD_TOKENS": "", **(env or {})})


def test_proxy_options_need_tokens(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    for extra in (["--proxy-headers"], ["--proxy-headers", "--forwarded-allow-ips", "10.0.0.2"]):
        result = _run(["--url", sqlite_url, *extra])
        assert result.exit_code != 0 and "without tokens" in result.output, result.output
    assert calls == []
    with pytest.raises(ConfigurationError, match="needs tokens"):
        ServerConfig(trusted_proxies=("127.0.0.1",)).validate()
    env = {"OFFLOAD_TOKENS": f"{ADMIN.name}:admin:{ADMIN.secret}"}
    args = ["--url", sqlite_url, "--proxy-headers", "--forwarded-allow-ips", "10.0.0.2,10.0.0.3"]
    result = _run(args, env)
    assert result.exit_code == 0, result.output
    assert calls[0]["proxy_headers"] is True
    assert calls[0]["forwarded_allow_ips"] == "10.0.0.2,10.0.0.3"


def _login(client: TestClient, headers: dict[str, str] | None = None) -> str:
    r = client.post(
        "/ui/login",
        data={"token": ADMIN.secret, "next": "/ui/jobs"},
        headers=headers or {},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    cookie: str = r.headers["set-cookie"]
    return cookie


def test_logout_revokes_the_session(secured: TestClient) -> None:
    _login(secured)
    session = secured.cookies[COOKIE]
    page = secured.get("/ui/jobs")
    assert page.status_code == 200
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert match
    r = secured.post("/ui/logout", data={"csrf": match.group(1)}, follow_redirects=False)
    assert r.status_code == 303
    secured.cookies.clear()
    secured.cookies.set(COOKIE, session)  # a copy of the cookie, kept by someone else
    assert_problem(secured.get("/jobs"), 401, "unauthorized")
    assert secured.get("/ui/jobs", follow_redirects=False).status_code == 303  # to the login
    _login(secured)  # a new login works
    assert secured.get("/jobs").status_code == 200


def test_secure_cookie_through_a_trusted_proxy(
    sqlite_app: Offload, make_client: MakeClient
) -> None:
    https = {"X-Forwarded-Proto": "https"}
    untrusted = make_client(sqlite_app, tokens=TOKENS)
    assert "secure" not in _login(untrusted, https).lower()
    trusted = make_client(sqlite_app, tokens=TOKENS, trusted_proxies=("testclient",))
    assert "secure" in _login(trusted, https).lower()
    assert "secure" in _login(trusted, {"Forwarded": "for=1.2.3.4;proto=https"}).lower()
    assert "secure" not in _login(trusted, {"X-Forwarded-Proto": "http"}).lower()
