"""A job's life pushed instead of polled, with real worker processes on both engines: the
Server-Sent Events of `GET /jobs/{id}/events`, and webhooks signed as Standard Webhooks says,
verified by a receiver with the `standardwebhooks` library, retried after a 500, and signed
with two secrets while one is rotated."""

from __future__ import annotations

import base64
import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from offload import Offload
from offload.server import create_app
from tests.server._live import serve

from ._harness import Procs, all_jobs, state_is, wait_until
from .pushapp import make_app

APP = "tests.integration.pushapp:app"
OLD = "whsec_" + base64.b64encode(b"the old secret, 24 bytes").decode()
NEW = "whsec_" + base64.b64encode(b"the new secret, 24 bytes").decode()


# --- a tiny webhook receiver ----------------------------------------------------------------
class Receiver:
    """An HTTP server on a free loopback port that records every POST (headers and body) and
    answers 500 to the first `failures` of them, 204 to the others."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.requests: list[tuple[dict[str, str], bytes, int]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = 500 if len(receiver.requests) < receiver.failures else 204
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.requests.append((headers, body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def delivered(self) -> list[tuple[dict[str, str], bytes]]:
        return [(h, b) for h, b, status in self.requests if status == 204]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(failures=1)
    yield r
    r.close()


@pytest.fixture
def push(store_url: str, receiver: Receiver) -> Iterator[Offload]:
    app = make_app(store_url, notify=receiver.url)
    app.store.migrate()
    yield app
    app.close()


@pytest.fixture
def procs(push: Offload, tmp_path: Path) -> Iterator[Procs]:
    folder = tmp_path / "work"
    folder.mkdir()
    started = Procs(push.config.url, folder)
    yield started
    started.cleanup()


def _worker(procs: Procs, receiver: Receiver, secrets: str) -> Any:
    env = {"OFFLOAD_WEBHOOK_SECRETS": secrets, "PUSH_NOTIFY": receiver.url}
    return procs.worker(app=APP, env=env, concurrency=2)


# --- webhooks -------------------------------------------------------------------------------
def test_a_webhook_is_signed_retried_after_a_500_and_verified(
    push: Offload, procs: Procs, receiver: Receiver
) -> None:
    worker = _worker(procs, receiver, OLD)
    job = push.job_type("told").enqueue(21)
    wait_until(lambda: receiver.delivered(), what="the webhook to be delivered")

    assert [status for _, _, status in receiver.requests] == [500, 204]
    (first, _, _), (headers, body, _) = receiver.requests
    assert first["webhook-id"] == headers["webhook-id"]  # one message, attempted twice
    event = Webhook(OLD).verify(body, headers)
    assert event["type"] == "job.completed"
    data = event["data"]
    assert (data["id"], data["kind"], data["state"], data["result"]) == (
        job.id,
        "told",
        "completed",
        42,
    )
    assert data["attempt"] == 1 and data["finished_at"] == event["timestamp"]
    assert data["inserted_at"] <= data["started_at"] <= data["finished_at"]
    with pytest.raises(WebhookVerificationError):
        Webhook(NEW).verify(body, headers)
    [delivery] = all_jobs(push, "offload.webhook")
    wait_until(state_is(push, delivery.id, "completed"), what="the delivery job to complete")
    record = push.store.job_get(delivery.id)
    assert record is not None and record.attempt == 2 and "500" in record.errors[0]["error"]
    worker.signal(15)
    assert worker.wait_exit() == 0


def test_a_rotated_secret_verifies_with_the_old_and_the_new(
    push: Offload, procs: Procs, receiver: Receiver
) -> None:
    receiver.failures = 0
    worker = _worker(procs, receiver, f"{NEW} {OLD}")  # the overlap: both are current
    push.job_type("boom").options(notify=receiver.url).enqueue("no luck")
    wait_until(lambda: receiver.delivered(), what="the webhook to be delivered")
    [(headers, body)] = receiver.delivered()
    assert len(headers["webhook-signature"].split(" ")) == 2
    # A receiver not moved yet and one moved already both verify the same message.
    old = Webhook(OLD).verify(body, headers)
    new = Webhook(NEW).verify(body, headers)
    assert old == new
    assert (old["type"], old["data"]["state"], old["data"]["attempt"]) == ("job.dead", "dead", 2)
    assert old["data"]["error"] == "RuntimeError: no luck"
    worker.signal(15)
    assert worker.wait_exit() == 0


# --- Server-Sent Events ---------------------------------------------------------------------
def _events(url: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The (event, data) pairs of a stream, as they come, until the server ends it."""
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - loopback
        assert response.headers["Content-Type"].startswith("text/event-stream")
        name, data = "message", ""
        for raw in response:
            line = raw.decode().rstrip("\r\n")
            if not line:
                if data:
                    yield name, json.loads(data)
                name, data = "message", ""
            elif line.startswith("event:"):
                name = line.partition(":")[2].strip()
            elif line.startswith("data:"):
                data += line.partition(":")[2].strip()


def test_a_job_s_life_streams_in_order_and_the_stream_ends(
    push: Offload, procs: Procs, receiver: Receiver
) -> None:
    steps = push.job_type("steps").enqueue("a")
    boom = push.job_type("boom").enqueue("twice")
    with serve(create_app(push)) as base:
        failing: list[tuple[str, dict[str, Any]]] = []

        def follow() -> None:
            failing.extend((n, d) for n, d in _events(f"{base}/jobs/{boom.id}/events"))

        thread = threading.Thread(target=follow, daemon=True)
        thread.start()
        wait_until(lambda: failing, what="the failing job's stream to open")
        seen: list[str] = []
        worker = None
        for name, document in _events(f"{base}/jobs/{steps.id}/events"):
            seen.append(name)
            assert document["type"] == f"job.{name}"
            assert document["data"]["id"] == steps.id
            if name == "waiting":
                worker = _worker(procs, receiver, OLD)
            if name == "progress":
                assert document["data"]["progress"] == {"done": 1, "total": 2}
                (procs.folder / "release-a").touch()
            if name == "completed":
                assert document["data"]["result"] == "done"
        assert seen == ["waiting", "started", "progress", "completed"]

        thread.join(30)
        assert not thread.is_alive(), "the failing job's stream did not end"
        assert [n for n, _ in failing] == [
            "waiting",
            "started",
            "failed",
            "started",
            "failed",
            "dead",
        ]
        attempts = [d["data"]["attempt"] for n, d in failing if n in ("started", "failed")]
        assert attempts == [1, 1, 2, 2]
        assert {d["data"]["error"] for n, d in failing if n in ("failed", "dead")} == {
            "RuntimeError: twice"
        }

        # A finished job's stream sends its final event alone, and ends.
        assert [n for n, _ in _events(f"{base}/jobs/{steps.id}/events")] == ["completed"]
        assert [n for n, _ in _events(f"{base}/jobs/{boom.id}/events")] == ["dead"]
    assert worker is not None
    worker.signal(15)
    assert worker.wait_exit() == 0
