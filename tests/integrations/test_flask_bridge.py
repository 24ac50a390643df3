"""The bridge that serves offload's ASGI server to Flask's WSGI server, with small ASGI
applications: the request as ASGI sees it, the body in pieces, errors before and after the
response started, the lifespan, and the client going away."""

from __future__ import annotations

import asyncio
import hashlib
import io
import threading
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send
from werkzeug.test import EnvironBuilder

from offload.integrations.flask import _bridge as bridge_module
from offload.integrations.flask._bridge import AsgiBridge, ClientDisconnected, scope_of
from tests._wait import eventually


class Started:
    """A WSGI start_response that remembers what it was given."""

    def __init__(self) -> None:
        self.status = ""
        self.headers: list[tuple[str, str]] = []

    def __call__(self, status: str, headers: list[tuple[str, str]], exc: Any = None) -> None:
        self.status, self.headers = status, headers


def call(bridge: AsgiBridge, environ: dict[str, Any]) -> tuple[Started, bytes]:
    started = Started()
    body = bridge(environ, started)
    try:
        return started, b"".join(body)
    finally:
        body.close()  # type: ignore[attr-defined]


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with the length and digest of the request body it read."""
    digest, size, pieces = hashlib.sha256(), 0, 0
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        digest.update(message["body"])
        size += len(message["body"])
        pieces += 1
        if not message.get("more_body", False):
            break
    answer = f"{size} {pieces} {digest.hexdigest()}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": answer})


@pytest.fixture
def bridges() -> Iterator[list[AsgiBridge]]:
    made: list[AsgiBridge] = []
    yield made
    for bridge in made:
        bridge.close()


def test_the_scope_has_the_mount_as_root_path_and_the_whole_path() -> None:
    environ = EnvironBuilder(
        path="/ops/offload/jobs/caf%C3%A9",
        query_string="state=dead",
        headers={"X-Custom": "yes"},
        base_url="https://example.com/site",
        environ_base={"REMOTE_ADDR": "10.1.2.3", "REMOTE_PORT": "4567"},
    ).get_environ()
    environ["SCRIPT_NAME"] += "/ops/offload"
    environ["PATH_INFO"] = environ["PATH_INFO"].removeprefix("/ops/offload")
    scope = scope_of(environ)
    assert scope["root_path"] == "/site/ops/offload"
    assert scope["path"] == "/site/ops/offload/jobs/café"
    assert scope["query_string"] == b"state=dead"
    assert scope["scheme"] == "https" and scope["method"] == "GET"
    assert scope["client"] == ("10.1.2.3", 4567)
    assert (b"x-custom", b"yes") in scope["headers"]
    assert (b"host", b"example.com") in scope["headers"]


@pytest.mark.parametrize("size", [0, 10, 200_000])
def test_the_body_reaches_the_application_in_pieces(bridges: list[AsgiBridge], size: int) -> None:
    bridges.append(bridge := AsgiBridge(echo))
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    environ = EnvironBuilder(method="POST", data=data).get_environ()
    started, body = call(bridge, environ)
    length, pieces, digest = body.decode().split()
    assert started.status == "200 OK"
    assert int(length) == size and digest == hashlib.sha256(data).hexdigest()
    assert int(pieces) == max(1, -(-size // (64 * 1024)))


def test_a_chunked_body_is_read_to_its_end(bridges: list[AsgiBridge]) -> None:
    bridges.append(bridge := AsgiBridge(echo))
    environ = EnvironBuilder(method="POST").get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ["wsgi.input"] = io.BytesIO(b"a" * 100_000)
    environ["wsgi.input_terminated"] = True  # the server ends the input where the body ends
    _, body = call(bridge, environ)
    assert body.decode().startswith("100000 ")


def test_hop_by_hop_headers_are_left_to_the_server(bridges: list[AsgiBridge]) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"connection", b"keep-alive"), (b"x-kept", b"1"), (b"keep-alive", b"5")]
        await send({"type": "http.response.start", "status": 299, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    bridges.append(bridge := AsgiBridge(app))
    started, body = call(bridge, EnvironBuilder().get_environ())
    assert started.status == "299 Unknown" and body == b"ok"
    assert started.headers == [("x-kept", "1")]


def test_an_application_failing_before_it_answers_is_a_500(bridges: list[AsgiBridge]) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("broken")

    bridges.append(bridge := AsgiBridge(app))
    started, body = call(bridge, EnvironBuilder().get_environ())
    assert started.status == "500 Internal Server Error" and body == b""
    eventually(lambda: bridge.running_requests == 0, what="the request to end")


def test_an_application_failing_mid_response_cuts_the_response_off(
    bridges: list[AsgiBridge],
) -> None:
    """A response that stops short must not look whole to the client: the WSGI server is
    given the error and drops the connection."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"half", "more_body": True})
        raise RuntimeError("broken halfway")

    bridges.append(bridge := AsgiBridge(app))
    started = Started()
    body = bridge(EnvironBuilder().get_environ(), started)
    assert next(iter(body)) == b"half"
    with pytest.raises(RuntimeError, match="broken halfway"):
        next(iter(body))
    body.close()  # type: ignore[attr-defined]
    assert bridge.open_responses == 0


def test_closing_the_response_is_a_disconnect_and_later_sends_fail(
    bridges: list[AsgiBridge],
) -> None:
    heard: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "http.request"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        heard.append((await receive())["type"])
        try:
            await send({"type": "http.response.body", "body": b"late", "more_body": True})
        except ClientDisconnected:
            heard.append("send failed")

    bridges.append(bridge := AsgiBridge(app))
    body = bridge(EnvironBuilder().get_environ(), Started())
    assert next(iter(body)) == b"first"
    assert (bridge.open_responses, bridge.running_requests) == (1, 1)
    body.close()  # type: ignore[attr-defined]
    eventually(lambda: bridge.running_requests == 0, what="the application to end")
    assert heard == ["http.disconnect", "send failed"]
    assert bridge.open_responses == 0


def test_the_lifespan_runs_from_the_first_request_to_close(bridges: list[AsgiBridge]) -> None:
    events: list[str] = []
    threads: set[str] = set()

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        events.append("start")
        yield
        events.append("stop")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        threads.add(threading.current_thread().name)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    bridge = AsgiBridge(app, lifespan, name="offload-test-loop")
    assert events == []
    for _ in range(3):
        assert call(bridge, EnvironBuilder().get_environ())[0].status == "204 No Content"
    assert events == ["start"] and threads == {"offload-test-loop"}
    bridge.close()
    assert events == ["start", "stop"]
    assert "offload-test-loop" not in {t.name for t in threading.enumerate()}
    bridges.append(bridge)  # a later request starts it again
    call(bridge, EnvironBuilder().get_environ())
    assert events == ["start", "stop", "start"]


def test_close_ends_a_response_still_streaming(bridges: list[AsgiBridge]) -> None:
    async def forever(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while True:
            await send({"type": "http.response.body", "body": b".", "more_body": True})
            await asyncio.sleep(0.01)

    bridge = AsgiBridge(forever)
    body = bridge(EnvironBuilder().get_environ(), Started())
    pieces: list[bytes] = []
    reader = threading.Thread(target=lambda: pieces.extend(_drain(body)))
    reader.start()
    eventually(lambda: len(pieces) > 2 or None, what="the stream to flow")
    bridge.close()
    reader.join(10)
    assert not reader.is_alive()
    assert bridge.running_requests == 0 and bridge.open_responses == 0


def _drain(body: Iterable[bytes]) -> Iterator[bytes]:
    try:
        yield from body
    finally:
        body.close()  # type: ignore[attr-defined]


def test_a_server_that_says_whether_its_client_went_is_asked(
    bridges: list[AsgiBridge], monkeypatch: pytest.MonkeyPatch
) -> None:
    """waitress gives no socket but a `waitress.client_disconnected()` to ask."""
    monkeypatch.setattr(bridge_module, "POLL_SECONDS", 0.01)
    heard: list[str] = []

    async def waits(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"open", "more_body": True})
        heard.append((await receive())["type"])

    bridges.append(bridge := AsgiBridge(waits))
    went = threading.Event()
    environ = EnvironBuilder().get_environ()
    environ["waitress.client_disconnected"] = went.is_set
    body = bridge(environ, Started())
    assert next(iter(body)) == b"open"
    went.set()
    with pytest.raises(StopIteration):  # the WSGI thread is let go at once
        next(iter(body))
    body.close()  # type: ignore[attr-defined]
    eventually(lambda: bridge.running_requests == 0, what="the application to end")
    assert heard == ["http.disconnect"]
