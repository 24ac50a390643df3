"""An ASGI application served by a WSGI server: how offload's HTTP server runs inside Flask.

One event-loop thread runs the ASGI application, and its lifespan, for every request. Each
request's WSGI thread hands the body to it and takes the response from it through a queue, a
message at a time: `send` returns once the WSGI thread has taken the message, so a slow client
slows the application instead of filling memory.

A streamed response (Server-Sent Events, a long poll) holds its WSGI thread while it is open,
as any streamed WSGI response does. It ends with its client: the WSGI server closing the
response (after a write to a departed client failed) reaches the application as
`http.disconnect`, and a `send` after it raises `ClientDisconnected`. Where the server puts its
connection in the environ (werkzeug's and gunicorn's do), the loop also watches the connection
while the response streams or the application awaits a disconnect, and a client that closed it
ends the response at once instead of at the next write (waitress, which only answers whether
the client went, and only with `channel_request_lookahead` set, is asked once a second).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import queue
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from wsgiref.util import is_hop_by_hop

if TYPE_CHECKING:  # the bridge itself needs no ASGI framework
    from starlette.types import ASGIApp, Message, Scope

__all__ = ["AsgiBridge", "ClientDisconnected", "scope_of"]

log = logging.getLogger("offload.integrations.flask")

READ_SIZE = 64 * 1024  # bytes of the request body read at a time
CANCEL_AFTER = 5.0  # seconds an application may go on after its client went away
SOCKET_KEYS = ("werkzeug.socket", "gunicorn.socket")  # where WSGI servers put the connection
POLL_SECONDS = 1.0  # how often a server that only answers "is the client gone?" is asked

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
Lifespan = Callable[[], AbstractAsyncContextManager[Any]]


class ClientDisconnected(OSError):
    """The client went away: a response can no longer be sent (ASGI's `send` raises an
    OSError then)."""


def scope_of(environ: Environ) -> Scope:
    """The ASGI HTTP scope of a WSGI request. `root_path` is the request's SCRIPT_NAME (where
    the application is mounted) and `path` the whole path, as ASGI servers give them."""

    def text(key: str) -> str:  # PEP 3333 strings are bytes decoded as latin-1
        return str(environ.get(key, "")).encode("latin-1").decode("utf-8", "replace")

    headers: list[tuple[bytes, bytes]] = []
    for key, value in environ.items():
        if key.startswith("HTTP_") and key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
            name = key[5:]
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            name = key
        else:
            continue
        headers.append((name.replace("_", "-").lower().encode("latin-1"), value.encode("latin-1")))
    root_path = text("SCRIPT_NAME").rstrip("/")
    remote = environ.get("REMOTE_ADDR")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": str(environ.get("SERVER_PROTOCOL", "HTTP/1.1")).partition("/")[2] or "1.1",
        "method": str(environ["REQUEST_METHOD"]).upper(),
        "scheme": environ.get("wsgi.url_scheme", "http"),
        "path": root_path + (text("PATH_INFO") or "/"),
        "query_string": str(environ.get("QUERY_STRING", "")).encode("latin-1"),
        "root_path": root_path,
        "headers": headers,
        "server": (environ.get("SERVER_NAME", ""), int(environ.get("SERVER_PORT") or 0)),
        "client": (remote, int(environ.get("REMOTE_PORT") or 0)) if remote else None,
        "extensions": {},
    }


def status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


class AsgiBridge:
    """A WSGI application serving `asgi_app`, whose event-loop thread starts with the first
    request (in each process: a forked worker starts its own) and stops with `close()` or the
    process. `lifespan` is entered on the loop when it starts and left when it stops.

    `open_responses` counts the responses the WSGI server has not closed yet (WSGI threads
    held), `running_requests` the requests whose ASGI application has not returned yet."""

    def __init__(
        self, asgi_app: ASGIApp, lifespan: Lifespan | None = None, *, name: str = "offload-asgi"
    ) -> None:
        self.asgi_app = asgi_app
        self._lifespan = lifespan
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._stop: asyncio.Event | None = None
        self._life: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._open = 0

    @property
    def open_responses(self) -> int:
        return self._open

    @property
    def running_requests(self) -> int:
        return len(self._tasks)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        loop = self._started()
        exchange = _Exchange(self, loop, environ)
        with self._lock:
            self._open += 1
        try:
            loop.call_soon_threadsafe(exchange.begin)
            status, headers = exchange.wait_start()
            start_response(status, headers)
        except BaseException:
            exchange.close()
            raise
        return _Body(exchange)

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is not None and self._pid == os.getpid():
                return self._loop
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
            thread.start()
            try:
                asyncio.run_coroutine_threadsafe(self._enter(), loop).result()
            except BaseException:
                loop.call_soon_threadsafe(loop.stop)
                thread.join()
                loop.close()
                raise
            self._loop, self._thread, self._pid = loop, thread, os.getpid()
            self._tasks = set()
            atexit.register(self.close)
            return loop

    async def _enter(self) -> None:
        """Enter the lifespan in a task of its own that leaves it when `close` says so."""
        stop = self._stop = asyncio.Event()
        lifespan = self._lifespan
        if lifespan is None:
            return
        entered: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def live() -> None:
            try:
                async with lifespan():
                    entered.set_result(None)
                    await stop.wait()
            except BaseException as exc:
                if entered.done():
                    raise
                entered.set_exception(exc)

        self._life = asyncio.create_task(live(), name=f"{self._name}-lifespan")
        await entered

    def close(self, timeout: float = 10.0) -> None:
        """End the requests still running, leave the lifespan and stop the loop's thread (a
        later request starts them again)."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
            if loop is None or thread is None or self._pid != os.getpid():
                return
        atexit.unregister(self.close)

        async def leave() -> None:
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=timeout)
            if self._stop is not None:
                self._stop.set()
            if self._life is not None:
                try:
                    await asyncio.wait_for(self._life, timeout)
                except Exception:
                    log.exception("%s: leaving the lifespan failed", self._name)
            # what the application left running (a poller, a watcher), as asyncio.run does
            rest = asyncio.all_tasks() - {asyncio.current_task()}
            for task in rest:
                task.cancel()
            if rest:
                await asyncio.wait(rest, timeout=timeout)
            await asyncio.get_running_loop().shutdown_asyncgens()

        try:
            asyncio.run_coroutine_threadsafe(leave(), loop).result(timeout * 2)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            if not thread.is_alive():
                loop.close()

    def _closed(self) -> None:
        with self._lock:
            self._open -= 1


class _Exchange:
    """One request between its WSGI thread and its ASGI task. The loop's side puts what the
    WSGI thread must do into `inbox`: a response message to pass on, a piece of the body to
    read, the application's end or the client's departure."""

    def __init__(self, bridge: AsgiBridge, loop: asyncio.AbstractEventLoop, env: Environ) -> None:
        self.bridge = bridge
        self.loop = loop
        self.environ = env
        self.inbox: queue.SimpleQueue[tuple[str, Any, Any]] = queue.SimpleQueue()
        length = str(env.get("CONTENT_LENGTH") or "").strip()
        # unknown length: read to the end only when the server says the input ends (chunked)
        self.body_left: int | None = (
            int(length) if length.isdigit() else (None if env.get("wsgi.input_terminated") else 0)
        )
        self.body_done = self.body_left == 0  # nothing to read: no need to ask the WSGI thread
        self.asked_body = False  # the application received (the end of) the body
        self.started = False  # the WSGI thread passed the response's start on
        self.finished = False  # ... and its last piece of body
        self.closed = False
        # the loop's side
        self.task: asyncio.Task[None] | None = None
        self.gone = False
        self.disconnected = asyncio.Event()
        self.waiting: set[asyncio.Future[Any]] = set()
        self.watch_tried = False
        self.unwatch: Callable[[], None] | None = None  # stops watching the connection

    # --- the loop's side

    def begin(self) -> None:
        app = self.bridge.asgi_app
        self.task = self.loop.create_task(self._run(app), name="offload-asgi-request")
        self.bridge._tasks.add(self.task)
        self.task.add_done_callback(self._ended)

    async def _run(self, app: ASGIApp) -> None:
        await app(scope_of(self.environ), self.receive, self.send)

    async def receive(self) -> Message:
        if not self.gone and not self.body_done:
            try:
                data, more = await self._ask("read", None)
            except ClientDisconnected:
                return {"type": "http.disconnect"}
            self.body_done = not more
            self.asked_body = True
            return {"type": "http.request", "body": data, "more_body": more}
        if not self.gone and not self.asked_body:  # a request without a body
            self.asked_body = True
            return {"type": "http.request", "body": b"", "more_body": False}
        self._watch()  # the application waits for the client to go: notice it going
        await self.disconnected.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if self.gone:
            raise ClientDisconnected("the client went away")
        if message["type"] == "http.response.body" and message.get("more_body", False):
            self._watch()
        await self._ask("message", message)

    async def _ask(self, what: str, message: Message | None) -> Any:
        """Hand `what` to the WSGI thread; its answer, or ClientDisconnected."""
        answer: asyncio.Future[Any] = self.loop.create_future()
        self.waiting.add(answer)
        self.inbox.put((what, message, answer))
        try:
            return await answer
        finally:
            self.waiting.discard(answer)

    def hang_up(self) -> None:
        """The client went away, or the WSGI server closed the response: the application
        receives `http.disconnect`, its sends fail, and it is cancelled if it goes on."""
        self._unwatch()
        if self.gone:
            return
        self.gone = True
        self.disconnected.set()
        for answer in self.waiting:
            if not answer.done():
                answer.set_exception(ClientDisconnected("the client went away"))
        if self.task is not None and not self.task.done():
            self.loop.call_later(CANCEL_AFTER, self.task.cancel)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self.bridge._tasks.discard(task)
        self._unwatch()
        error = None if task.cancelled() else task.exception()
        if error is not None and self.gone:
            log.debug("the application failed after its client went away: %r", error)
            error = None
        elif error is not None:
            log.error("exception in the ASGI application", exc_info=error)
        self.inbox.put(("end", error, None))

    def _watch(self) -> None:
        """Watch the connection for the client closing it, where the WSGI server tells which
        it is (werkzeug, gunicorn) or whether its client went (waitress)."""
        if self.watch_tried or self.gone:
            return
        self.watch_tried = True
        conn = next((self.environ[k] for k in SOCKET_KEYS if k in self.environ), None)
        asked = self.environ.get("waitress.client_disconnected")
        if (
            isinstance(conn, socket.socket)
            and not isinstance(conn, ssl.SSLSocket)  # peeking needs the plain bytes
            and hasattr(socket, "MSG_DONTWAIT")
        ):
            try:
                own = conn.dup()  # a descriptor of our own: the server may close its one first
            except OSError:
                return
            try:
                self.loop.add_reader(own.fileno(), self._readable, own)
            except (OSError, ValueError, NotImplementedError):
                own.close()
                return

            def stop() -> None:
                with contextlib.suppress(OSError, ValueError):
                    self.loop.remove_reader(own.fileno())
                own.close()

            self.unwatch = stop
        elif callable(asked):  # waitress with channel_request_lookahead > 0
            self._poll(asked)

    def _readable(self, own: socket.socket) -> None:
        try:
            data = own.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # reset
            data = b""
        self._unwatch()  # closed, or the client sends more: nothing more to learn here
        if not data:
            self._client_gone()

    def _poll(self, asked: Callable[[], bool]) -> None:
        try:
            gone = asked()
        except Exception:  # noqa: BLE001 - the server's check failing: stop asking it
            self._unwatch()
            return
        if gone:
            self._unwatch()
            self._client_gone()
            return
        handle = self.loop.call_later(POLL_SECONDS, self._poll, asked)
        self.unwatch = handle.cancel

    def _unwatch(self) -> None:
        stop, self.unwatch = self.unwatch, None
        self.watch_tried = True  # never again for this request
        if stop is not None:
            stop()

    def _client_gone(self) -> None:
        self.hang_up()
        self.inbox.put(("gone", None, None))

    # --- the WSGI thread's side

    def _answer(self, answer: asyncio.Future[Any], value: Any) -> None:
        def settle() -> None:
            if not answer.done():
                answer.set_result(value)

        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            self.loop.call_soon_threadsafe(settle)

    def _fail(self, answer: asyncio.Future[Any]) -> None:
        def settle() -> None:
            if not answer.done():
                answer.set_exception(ClientDisconnected("reading the request body failed"))

        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(settle)

    def _read(self, answer: asyncio.Future[Any]) -> None:
        """Read the next piece of the request body for the application."""
        stream = self.environ.get("wsgi.input")
        left = self.body_left
        size = READ_SIZE if left is None else min(READ_SIZE, left)
        try:
            data: bytes = stream.read(size) if stream is not None and size > 0 else b""
        except OSError:
            self._fail(answer)
            return
        if left is not None:
            self.body_left = left - len(data)
        more = bool(data) and (left is None or self.body_left != 0)
        self._answer(answer, (data, more))

    def next_message(self) -> Message | None:
        """The application's next response message, reading the body for it meanwhile; None
        once it returned or the client went away."""
        while True:
            what, message, answer = self.inbox.get()
            if what == "read":
                self._read(answer)
            elif what == "message":
                self._answer(answer, None)
                return dict(message)
            elif what == "end":
                if message is not None and self.started:
                    raise message  # cut the response off: the client must not take it whole
                return None
            else:  # "gone"
                return None

    def wait_start(self) -> tuple[str, list[tuple[str, str]]]:
        """The response's status line and headers, once the application sent them (a 500
        when it sent none)."""
        message = self.next_message()
        while message is not None and message["type"] != "http.response.start":
            message = self.next_message()  # nothing else may come first: ignored
        if message is None:
            self.finished = True
            return status_line(500), [("Content-Type", "text/plain; charset=utf-8")]
        self.started = True
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in message.get("headers", [])
        ]
        # a WSGI application may not set the connection's headers: the server does
        return status_line(int(message["status"])), [h for h in headers if not is_hop_by_hop(h[0])]

    def next_piece(self) -> bytes | None:
        """The next non-empty piece of the body (or its empty last one); None at its end."""
        while not self.finished:
            message = self.next_message()
            if message is None:
                self.finished = True
                return None
            if message["type"] != "http.response.body":
                continue
            body = bytes(message.get("body", b""))
            self.finished = not message.get("more_body", False)
            if body or self.finished:
                return body
        return None

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.bridge._closed()
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing runs there
            self.loop.call_soon_threadsafe(self.hang_up)


class _Body:
    """The response body as the WSGI server iterates it; `close()` (the server's, when the
    response ended or the client went away) hangs the request up."""

    def __init__(self, exchange: _Exchange) -> None:
        self._exchange = exchange

    def __iter__(self) -> _Body:
        return self

    def __next__(self) -> bytes:
        piece = self._exchange.next_piece()
        if piece is None:
            raise StopIteration
        return piece

    def close(self) -> None:
        self._exchange.close()
