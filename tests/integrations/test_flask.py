"""The Flask extension: configured from app.config, reachable from views, enqueue in a view;
the HTTP API and dashboard mounted under a sub-path, streams ending with their clients."""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest
from flask import Flask, request
from werkzeug.serving import make_server
from werkzeug.test import EnvironBuilder

from offload import Offload
from offload.integrations.flask import AsgiBridge, FlaskOffload, current_offload, mount
from offload.server import Token
from offload.testing import drain, enqueued
from tests._wait import eventually


def test_a_view_enqueues_on_the_app_configured_from_app_config(tmp_path: Path) -> None:
    jobs = Offload(auto_migrate=True)
    sent: list[str] = []

    @jobs.job()
    def send_welcome(email: str) -> None:
        sent.append(email)

    site = Flask(__name__)
    site.config["OFFLOAD_URL"] = f"sqlite:///{tmp_path}/jobs.db"
    ext = FlaskOffload(jobs)
    ext.init_app(site)

    @site.post("/signup")
    def signup() -> dict[str, int]:
        return {"job": current_offload().enqueue("send_welcome", request.form["email"]).id}

    try:
        answer = site.test_client().post("/signup", data={"email": "ada@example.com"})
        assert answer.status_code == 200, answer.text
        assert jobs.config.url == f"sqlite:///{tmp_path}/jobs.db"
        assert [r.args for r in enqueued(jobs)] == [{"email": "ada@example.com"}]
        assert drain(jobs).completed == 1 and sent == ["ada@example.com"]
    finally:
        jobs.close()


def test_the_extension_builds_the_app_from_config(tmp_path: Path) -> None:
    site = Flask(__name__)
    site.config["OFFLOAD_URL"] = f"sqlite:///{tmp_path}/jobs.db"
    site.config["OFFLOAD_OPTIONS"] = {"lease_seconds": 12.0}
    jobs = FlaskOffload(flask_app=site).offload
    assert jobs is not None
    with site.app_context():
        assert current_offload() is jobs
    assert jobs.config.lease_seconds == 12.0


def test_current_offload_outside_an_initialised_app_says_so() -> None:
    with Flask(__name__).app_context(), pytest.raises(RuntimeError, match="init_app"):
        current_offload()


# --- the HTTP API and dashboard mounted under a sub-path, served by a real threaded server


def _mounted(tmp_path: Path, **options: Any) -> tuple[Flask, Offload, AsgiBridge]:
    jobs = Offload(f"sqlite:///{tmp_path}/jobs.db", auto_migrate=True)

    @jobs.job()
    def send_welcome(email: str) -> None: ...

    site = Flask(__name__)

    @site.get("/")
    def home() -> str:
        return "the site's own page"

    bridge = mount(site, jobs, "/ops/offload", **options)
    return site, jobs, bridge


@contextmanager
def _serving(site: Flask, bridge: AsgiBridge, jobs: Offload) -> Iterator[str]:
    """`site` served by werkzeug's threaded server on a free loopback port: its host:port."""
    server = make_server("127.0.0.1", 0, site, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="werkzeug", daemon=True
    )
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
        bridge.close()
        jobs.close()


def _request(
    where: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(where, timeout=10)
    try:
        data = None if body is None else json.dumps(body).encode()
        sent = {**(headers or {}), **({"Content-Type": "application/json"} if data else {})}
        conn.request(method, path, body=data, headers=sent)
        answer = conn.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        conn.close()


def _open_stream(where: str, path: str, until: bytes) -> tuple[socket.socket, bytes]:
    """A connection reading the event stream at `path` until `until` arrived."""
    host, port = where.split(":")
    conn = socket.create_connection((host, int(port)), timeout=10)
    conn.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {where}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    seen = b""
    while until not in seen:
        piece = conn.recv(4096)
        if not piece:
            conn.close()
            raise AssertionError(f"the stream ended before {until!r}: {seen!r}")
        seen += piece
    return conn, seen


def _settled(bridge: AsgiBridge) -> bool:
    return bridge.open_responses == 0 and bridge.running_requests == 0


def test_the_dashboard_answers_under_the_prefix_and_links_within_it(tmp_path: Path) -> None:
    site, jobs, bridge = _mounted(tmp_path)
    with _serving(site, bridge, jobs) as where:
        jobs.enqueue("send_welcome", "ada@example.com")
        status, headers, page = _request(
            where, "GET", "/ops/offload/", headers={"Accept": "text/html"}
        )
        assert status == 200, page[:500]
        assert headers["content-type"].startswith("text/html")
        links = set(re.findall(r'(?:href|src)="(/[^"]*)"', page.decode()))
        assert any(link.startswith("/ops/offload/static/") for link in links), links
        assert all(link.startswith("/ops/offload/") for link in links), links
        assert b'data-events="/ops/offload/ui/events"' in page  # the live updates' stream
        for link in sorted(links):
            assert _request(where, "GET", link)[0] == 200, link
        # the prefix alone leads to the overview; the rest of the site is Flask's
        status, _, bare = _request(where, "GET", "/ops/offload", headers={"Accept": "text/html"})
        assert status == 200 and b"<title>Overview" in bare, bare[:500]
        assert _request(where, "GET", "/") == (200, ANY, b"the site's own page")
    assert _settled(bridge)


def test_the_json_api_answers_under_the_prefix(tmp_path: Path) -> None:
    site, jobs, bridge = _mounted(tmp_path)
    with _serving(site, bridge, jobs) as where:
        status, _, body = _request(
            where, "POST", "/ops/offload/jobs", {"kind": "send_welcome", "args": {"email": "a@b.c"}}
        )
        assert status == 202, body
        job = json.loads(body)["id"]
        status, headers, body = _request(where, "GET", f"/ops/offload/jobs/{job}")
        assert status == 200, body
        assert headers["content-type"] == "application/json"
        assert json.loads(body)["kind"] == "send_welcome"
        assert [r.args for r in enqueued(jobs)] == [{"email": "a@b.c"}]
        status, _, body = _request(where, "GET", "/ops/offload/jobs/999999")
        assert status == 404 and json.loads(body)["type"].endswith("job-not-found"), body


@pytest.mark.parametrize("stream", ["job", "dashboard"])
def test_a_stream_under_the_prefix_delivers_and_ends_when_its_client_goes(
    tmp_path: Path, stream: str
) -> None:
    site, jobs, bridge = _mounted(tmp_path)
    with _serving(site, bridge, jobs) as where:
        job = jobs.enqueue("send_welcome", "ada@example.com")
        path, first = {
            "job": (f"/ops/offload/jobs/{job.id}/events", b"event: waiting"),
            "dashboard": ("/ops/offload/ui/events", b"event: ready"),
        }[stream]
        conn, seen = _open_stream(where, path, first)
        assert b"text/event-stream" in seen
        assert (bridge.open_responses, bridge.running_requests) == (1, 1)
        conn.close()
        # nothing more is written to the stream: the bridge notices the closed connection
        eventually(lambda: _settled(bridge), timeout=10, what="the stream to end")


def test_the_server_closing_the_response_ends_the_stream(tmp_path: Path) -> None:
    """A WSGI server that does not tell its connection (no socket in the environ) closes the
    response when writing fails: the application hears the disconnect and ends."""
    site, jobs, bridge = _mounted(tmp_path)
    try:
        job = jobs.enqueue("send_welcome", "ada@example.com")
        environ = EnvironBuilder(
            path=f"/ops/offload/jobs/{job.id}/events", base_url="http://localhost"
        ).get_environ()
        started: list[str] = []
        body = site.wsgi_app(environ, lambda status, headers, exc=None: started.append(status))
        assert started == ["200 OK"]
        seen = b""
        for piece in body:
            seen += piece
            if b"event: waiting" in seen:
                break
        assert (bridge.open_responses, bridge.running_requests) == (1, 1)
        body.close()  # type: ignore[attr-defined]
        assert bridge.open_responses == 0
        eventually(lambda: bridge.running_requests == 0, timeout=10, what="the stream to end")
    finally:
        bridge.close()
        jobs.close()


def test_tokens_are_required_when_configured(tmp_path: Path) -> None:
    token = Token("ops", "admin", "admin-token-0123456789abcdef")
    site, jobs, bridge = _mounted(tmp_path, tokens=[token])
    with _serving(site, bridge, jobs) as where:
        status, _, body = _request(where, "GET", "/ops/offload/jobs")
        assert status == 401, body
        bearer = {"Authorization": f"Bearer {token.secret}"}
        status, _, body = _request(where, "GET", "/ops/offload/jobs", headers=bearer)
        assert status == 200, body
        # a browser without a session is sent to the login page, within the prefix
        status, headers, _ = _request(
            where, "GET", "/ops/offload/", headers={"Accept": "text/html"}
        )
        assert status in (302, 303, 307) and headers["location"].startswith("/ops/offload/"), (
            headers
        )


def test_the_extension_mounts_its_own_app_and_views_still_reach_it(tmp_path: Path) -> None:
    site = Flask(__name__)
    site.config["OFFLOAD_URL"] = f"sqlite:///{tmp_path}/jobs.db"
    ext = FlaskOffload()
    bridge = ext.mount(site, "/ops/offload")  # init_app runs first
    jobs = ext.offload
    assert jobs is not None
    try:
        with site.app_context():
            assert current_offload() is jobs
        answer = site.test_client().get("/ops/offload/healthz")
        assert answer.status_code == 200, answer.text
        assert answer.json == {"status": "ok", "store": "sqlite"}
    finally:
        bridge.close()
        jobs.close()


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("offload", "must start with '/'"),
        ("/", "whole Flask application"),
        ("", "must start with '/'"),
        ("//offload", "empty segment"),
        ("/ops//offload", "empty segment"),
        ("/ops/../offload", "'..' segment"),
        ("/ops/off load", "'off load'"),
        ("/ops/offload?x=1", "escapes"),
        ("/opérations", "escapes"),
    ],
)
def test_a_malformed_prefix_is_refused_saying_why(path: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)) as caught:
        mount(Flask(__name__), Offload(), path)
    assert repr(path) in str(caught.value)


def test_a_prefix_taken_by_the_flask_app_or_another_mount_is_refused(tmp_path: Path) -> None:
    site = Flask(__name__)
    jobs = Offload(f"sqlite:///{tmp_path}/jobs.db")

    @site.get("/ops/status")
    def status() -> str:
        return "ok"

    with pytest.raises(ValueError, match="routes '/ops/status'"):
        mount(site, jobs, "/ops")
    with pytest.raises(ValueError, match="routes '/static/<path:filename>'"):
        mount(site, jobs, "/static")
    bridge = mount(site, jobs, "/ops/offload/")  # the trailing slash is the same path
    with pytest.raises(ValueError, match="mounted at '/ops/offload' already"):
        mount(site, jobs, "/ops/offload/inner")
    with pytest.raises(TypeError, match="tokenz"):
        mount(site, jobs, "/other", tokenz=[])
    assert site.test_client().get("/ops/offload/healthz").status_code == 200
    bridge.close()
    jobs.close()
