"""Authentication and its edges: roles, no leak without a token, dashboard sessions, CSRF,
loopback-only without tokens."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from offload import ConfigurationError, Offload
from offload.server._auth import COOKIE
from offload.server._config import ServerConfig, Token, load_tokens, parse_tokens

from ._helpers import SECRET_ARG, TOKENS, MakeClient, assert_problem, bearer, enqueue, fetch

PUBLIC = {"/openapi.json", "/healthz", "/problems/{slug}", "/ui/login"}


def test_no_token_is_401_with_a_challenge(secured: TestClient) -> None:
    r = secured.get("/jobs")
    assert_problem(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == 'Bearer realm="offload"'
    assert_problem(
        secured.get("/jobs", headers={"Authorization": "Bearer wrong-token-000000000"}),
        401,
        "unauthorized",
    )
    assert_problem(
        secured.get("/jobs", headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401, "unauthorized"
    )


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("read", {"list"}),
        ("enqueue", {"list", "enqueue"}),
        ("worker", {"list", "enqueue", "fetch"}),
        ("admin", {"list", "enqueue", "fetch", "cancel"}),
    ],
)
def test_roles_allow_what_they_should(secured: TestClient, role: str, allowed: set[str]) -> None:
    admin = bearer("admin")
    job = enqueue(secured, headers=admin)
    h = bearer(role)
    results = {
        "list": secured.get("/jobs", headers=h),
        "enqueue": secured.post("/jobs", json={"kind": "add", "args": {"a": 1, "b": 1}}, headers=h),
        "fetch": secured.post(
            "/worker/fetch", json={"worker": "w", "queues": ["nothing"]}, headers=h
        ),
        "cancel": secured.post(f"/jobs/{job['id']}/cancel", headers=h),
    }
    for name, r in results.items():
        if name in allowed:
            assert r.status_code < 300, (name, r.text)
        else:
            assert_problem(r, 403, "forbidden")


def test_no_endpoint_leaks_arguments_without_a_token(secured: TestClient) -> None:
    job = enqueue(secured, "js.add", args={"secret": SECRET_ARG}, headers=bearer("admin"))
    doc = secured.get("/openapi.json").json()
    assert SECRET_ARG not in str(doc)
    for template, methods in doc["paths"].items():
        path = template.replace("{job_id}", str(job["id"])).replace("{slug}", "forbidden")
        path = path.replace("{rule_id}", "1").replace("{workflow_id}", "1")
        for method in methods:
            r = secured.request(method.upper(), path, follow_redirects=False)
            assert SECRET_ARG not in r.text, (method, path)
            if template not in PUBLIC:
                assert r.status_code in (401, 303), (method, path, r.status_code)
                if r.status_code == 303:
                    assert r.headers["location"].startswith("/ui/login")


def test_metrics_need_a_token(secured: TestClient) -> None:
    assert_problem(secured.get("/metrics"), 401, "unauthorized")
    assert secured.get("/metrics", headers=bearer("read")).status_code == 200


def _login(client: TestClient, role: str = "admin") -> None:
    token = next(t for t in TOKENS if t.role == role)
    r = client.post(
        "/ui/login", data={"token": token.secret, "next": "/ui/jobs"}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == "/ui/jobs"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and token.secret not in cookie


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match, html
    return match.group(1)


def test_dashboard_login_and_session(secured: TestClient) -> None:
    r = secured.get("/ui/jobs?state=dead", follow_redirects=False)
    assert (
        r.status_code == 303 and r.headers["location"] == "/ui/login?next=/ui/jobs%3Fstate%3Ddead"
    )
    page = secured.get("/ui/login")
    assert page.status_code == 200 and 'type="password"' in page.text
    bad = secured.post("/ui/login", data={"token": "not-a-valid-token-at-all"})
    assert bad.status_code == 401 and "not valid" in bad.text
    _login(secured)
    assert secured.get("/ui/jobs").status_code == 200
    assert secured.get("/jobs").status_code == 200  # reads with the session are fine
    r = secured.post("/jobs", json={"kind": "add", "args": {"a": 1, "b": 1}})
    assert_problem(r, 401, "unauthorized")  # the session cookie never authorises API writes


def test_sessions_of_token_names_with_dots(sqlite_app: Offload, make_client: MakeClient) -> None:
    token = Token("ci.bot.v2", "read", "dotted-name-token-0123456789")
    c = make_client(sqlite_app, tokens=(token,))
    r = c.post("/ui/login", data={"token": token.secret}, follow_redirects=False)
    assert r.status_code == 303
    assert c.get("/ui/jobs", follow_redirects=False).status_code == 200


def test_login_redirects_only_to_local_paths(secured: TestClient) -> None:
    token = TOKENS[0].secret
    for target in ("https://evil.example/", "//evil.example/", "/\\evil"):
        r = secured.post("/ui/login", data={"token": token, "next": target}, follow_redirects=False)
        assert r.headers["location"] == "/"


def test_tampered_or_expired_sessions_are_refused(secured: TestClient) -> None:
    _login(secured, "read")
    value = secured.cookies[COOKIE]
    name, expires, mac = value.split(".")
    for forged in (
        f"ops.{expires}.{mac}",
        f"{name}.{int(expires) + 99}.{mac}",
        f"{name}.1.{mac}",
        "x",
    ):
        secured.cookies.clear()
        secured.cookies.set(COOKIE, forged)
        r = secured.get("/ui/jobs", follow_redirects=False)
        assert r.status_code == 303


def test_buttons_need_the_csrf_token_and_this_origin(secured: TestClient) -> None:
    job = enqueue(secured, headers=bearer("admin"))
    _login(secured)
    page = secured.get(f"/ui/jobs/{job['id']}")
    csrf = _csrf(page.text)
    url = f"/ui/jobs/{job['id']}/cancel"
    assert_problem(secured.post(url, data={}), 403, "cross-origin")
    assert_problem(secured.post(url, data={"csrf": "0" * 64}), 403, "cross-origin")
    evil = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    assert_problem(secured.post(url, data={"csrf": csrf}, headers=evil), 403, "cross-origin")
    r = secured.post(
        url,
        data={"csrf": csrf},
        headers={"Origin": "http://127.0.0.1:8750"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == f"/ui/jobs/{job['id']}?done=cancelled"
    assert secured.get(f"/jobs/{job['id']}", headers=bearer("read")).json()["state"] == "cancelled"


def test_read_role_sees_no_buttons_and_cannot_press_them(secured: TestClient) -> None:
    job = enqueue(secured, headers=bearer("admin"))
    _login(secured, "read")
    page = secured.get(f"/ui/jobs/{job['id']}")
    assert "/cancel" not in page.text
    r = secured.post(f"/ui/jobs/{job['id']}/cancel", data={"csrf": _csrf(page.text)})
    assert_problem(r, 403, "forbidden")


def test_logout_clears_the_session(secured: TestClient) -> None:
    _login(secured)
    csrf = _csrf(secured.get("/").text)
    r = secured.post("/ui/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and f'{COOKIE}=""' in r.headers["set-cookie"]


# --- without tokens: loopback only ---------------------------------------------------------
def test_without_tokens_foreign_hosts_are_refused(client: TestClient) -> None:
    assert_problem(client.get("/jobs", headers={"Host": "attacker.example"}), 400, "invalid-host")
    assert client.get("/jobs", headers={"Host": "localhost:8750"}).status_code == 200
    assert client.get("/jobs", headers={"Host": "[::1]:8750"}).status_code == 200


def test_without_tokens_cross_site_writes_are_refused(client: TestClient) -> None:
    r = client.post(
        "/jobs",
        json={"kind": "add", "args": {"a": 1, "b": 1}},
        headers={"Origin": "https://evil.example"},
    )
    assert_problem(r, 403, "cross-origin")
    r = client.post(
        "/jobs",
        json={"kind": "add", "args": {"a": 1, "b": 1}},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert_problem(r, 403, "cross-origin")
    r = client.post(
        "/jobs",
        json={"kind": "add", "args": {"a": 1, "b": 1}},
        headers={"Origin": "http://127.0.0.1:8750"},
    )
    assert r.status_code == 202
    job = fetch(client)[0]
    r = client.post(f"/ui/jobs/{job['id']}/retry", data={"csrf": "nope"})
    assert_problem(r, 403, "cross-origin")


def test_allowed_hosts_extend_loopback(sqlite_app: Offload, make_client: MakeClient) -> None:
    c = make_client(sqlite_app, allowed_hosts=("jobs.internal",))
    assert c.get("/healthz", headers={"Host": "jobs.internal"}).status_code == 200


# --- token configuration -------------------------------------------------------------------
def test_parse_tokens() -> None:
    text = "# comment\n\nci:admin:abcdefghijklmnop:with:colons\ngrafana:read:0123456789abcdefXYZ"
    tokens = parse_tokens(text, "f")
    assert tokens == [
        Token("ci", "admin", "abcdefghijklmnop:with:colons"),
        Token("grafana", "read", "0123456789abcdefXYZ"),
    ]
    assert (
        parse_tokens("a:read:0123456789abcdef,b:worker:0123456789abcdeg", "env")[1].role == "worker"
    )
    for bad, words in (
        ("nocolons", "name:role:token"),
        ("a:root:0123456789abcdef", "role"),
        ("a:read:short", "16"),
        ("bad name:read:0123456789abcdef", "name"),
    ):
        with pytest.raises(ConfigurationError, match=words):
            parse_tokens(bad, "f")
    with pytest.raises(ConfigurationError, match="share a name"):
        ServerConfig(
            tokens=(Token("a", "read", "x" * 16), Token("a", "admin", "y" * 16))
        ).validate()
    with pytest.raises(ConfigurationError, match="same secret"):
        ServerConfig(
            tokens=(Token("a", "read", "x" * 16), Token("b", "admin", "x" * 16))
        ).validate()


def test_load_tokens_from_file_then_environment(tmp_path: Path) -> None:
    f = tmp_path / "tokens"
    f.write_text("ops:admin:0123456789abcdef0123\n")
    env = {"OFFLOAD_TOKENS": "ci:read:fedcba98765432100000"}
    assert [t.name for t in load_tokens(str(f), env)] == ["ops"]
    assert [t.name for t in load_tokens(None, env)] == ["ci"]
    assert load_tokens(None, {}) == []
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_tokens(str(tmp_path / "missing"), env)
    (tmp_path / "empty").write_text("# nothing\n")
    with pytest.raises(ConfigurationError, match="no token"):
        load_tokens(str(tmp_path / "empty"), env)
