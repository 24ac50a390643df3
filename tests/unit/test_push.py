"""Results pushed, without I/O: notify URLs and the allow-list, the `notify` option, the
signatures of webhooks (several secrets while one is rotated), and the events a stream derives
from two readings of a job."""

from __future__ import annotations

import base64
import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from offload import ConfigurationError, InvalidArgumentsError, Offload
from offload.app._webhooks import Webhooks, event_document
from offload.jobs._notify import NOTIFY_META, host_allowed, url_problem
from offload.server._job_events import changes
from offload.store._contract import JobRecord, NewJob

OLD = "whsec_" + base64.b64encode(b"o" * 24).decode()
NEW = "whsec_" + base64.b64encode(b"n" * 24).decode()


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/offload",
        "http://127.0.0.1:8080/hooks?x=1#y",
        "HTTPS://Hooks.Example.com:65535/",
        "https://hooks.example.com/a@b",  # an @ in the path is no credential
    ],
)
def test_good_notify_urls(url: str) -> None:
    assert url_problem(url) is None


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://hooks.example.com/x", "starts with https:// or http://"),
        ("hooks.example.com/x", "starts with https:// or http://"),
        ("javascript:alert(1)", "starts with https:// or http://"),
        ("file:///etc/passwd", "starts with https:// or http://"),
        ("https://", "names no host"),
        ("https://user:secret@hooks.example.com/", "credentials"),
        ("https://hooks.example.com:70000/", "port up to 65535"),
        ("https://hooks.example.com/a b", "white space"),
        ("https://hooks.example.com/\x00", "white space or control"),
        ("https://hooks.example.com/é", "printable ASCII"),
        (None, "as text"),
        ("https://h/" + "x" * 2000, "characters"),
    ],
)
def test_bad_notify_urls_say_what_is_wrong(url: Any, says: str) -> None:
    problem = url_problem(url)
    assert problem is not None and says in problem


def test_the_allow_list_matches_hosts_not_prefixes() -> None:
    allow = ["hooks.example.com", "*.internal.example", "10.0.0.5:8443", "[::1]"]
    assert host_allowed("https://hooks.example.com/x", allow)
    assert host_allowed("https://HOOKS.example.com./x", allow)
    assert host_allowed("https://a.b.internal.example/x", allow)
    assert host_allowed("https://10.0.0.5:8443/x", allow)
    assert not host_allowed("https://hooks.example.com.evil.example/x", allow)
    assert not host_allowed("https://internal.example/x", allow)  # *. is for subdomains
    assert not host_allowed("https://10.0.0.5/x", allow)  # another port
    assert not host_allowed("http://169.254.169.254/latest", allow)


def test_notify_is_an_option_of_the_type_and_of_each_call(tmp_path: Any) -> None:
    app = Offload(f"sqlite:///{tmp_path / 'jobs.db'}")

    @app.job(notify="https://hooks.example.com/a")
    def told(n: int) -> int:
        return n

    @app.job()
    def plain() -> None: ...

    assert told.prepare(1).new.meta == {NOTIFY_META: "https://hooks.example.com/a"}
    assert plain.prepare().new.meta == {}
    other = told.options(notify="https://hooks.example.com/b").prepare(1).new
    assert other.meta == {NOTIFY_META: "https://hooks.example.com/b"}
    assert told.options(notify=None).prepare(1).new.meta == {}
    assert plain.options(notify="https://x.example/").prepare().new.meta[NOTIFY_META]
    with pytest.raises(ConfigurationError, match="notify 'ftp://x' is no http or https URL"):
        plain.options(notify="ftp://x").enqueue()
    with pytest.raises(ConfigurationError, match="job 'bad': notify"):
        app.job(name="bad", notify="mailto:ops@example.com")(lambda: None)


def test_the_allow_list_refuses_at_enqueue_whatever_the_path(tmp_path: Any) -> None:
    app = Offload(f"sqlite:///{tmp_path / 'jobs.db'}")

    @app.job()
    def plain() -> None: ...

    app.webhooks.allow = ["hooks.example.com"]
    plain.options(notify="https://hooks.example.com/x").enqueue()
    with pytest.raises(InvalidArgumentsError, match="allow-list") as caught:
        plain.options(notify="https://evil.example/x").enqueue()
    assert caught.value.argument == "notify"
    with pytest.raises(InvalidArgumentsError, match="allow-list"):
        plain.options(meta={NOTIFY_META: "http://10.1.2.3/"}).enqueue()
    with pytest.raises(InvalidArgumentsError, match="no http or https"):
        app.admit_and_store([NewJob("plain", "default", {}, meta={NOTIFY_META: "gopher://x"})])
    app.close()


def test_secrets_come_from_the_environment_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Webhooks()
    monkeypatch.delenv("OFFLOAD_WEBHOOK_SECRETS", raising=False)
    assert settings.secrets == []
    with pytest.raises(ConfigurationError, match="OFFLOAD_WEBHOOK_SECRETS"):
        settings.signature("msg_1", datetime.now(UTC), b"{}")
    monkeypatch.setenv("OFFLOAD_WEBHOOK_SECRETS", f" {NEW},{OLD} ")
    assert settings.secrets == [NEW, OLD]
    settings.secrets = [OLD]
    assert settings.secrets == [OLD]


def test_every_current_secret_signs_so_old_and_new_receivers_verify() -> None:
    now = datetime.now(UTC)
    body = b'{"type":"job.completed"}'
    headers = {"webhook-id": "msg_offload_7", "webhook-timestamp": str(int(now.timestamp()))}
    both = Webhooks(secrets=[NEW, OLD]).signature("msg_offload_7", now, body)
    assert len(both.split(" ")) == 2
    for secret in (OLD, NEW):
        Webhook(secret).verify(body, {**headers, "webhook-signature": both})
    only_new = Webhooks(secrets=[NEW]).signature("msg_offload_7", now, body)
    with pytest.raises(WebhookVerificationError):
        Webhook(OLD).verify(body, {**headers, "webhook-signature": only_new})
    with pytest.raises(ConfigurationError, match="cannot be used"):
        Webhooks(secrets=["whsec_"]).signature("m", now, body)


def test_the_event_document_has_the_standard_webhooks_shape() -> None:
    document = event_document(
        "job.dead",
        {
            "id": 3,
            "kind": "charge",
            "queue": "default",
            "state": "dead",
            "attempt": 2,
            "max_attempts": 2,
            "error": "RuntimeError: declined",
            "inserted_at": 0.0,
            "attempted_at": 1.5,
            "finished_at": 2.25,
        },
    )
    assert document == {
        "type": "job.dead",
        "timestamp": "1970-01-01T00:00:02.250Z",
        "data": {
            "id": 3,
            "kind": "charge",
            "queue": "default",
            "state": "dead",
            "attempt": 2,
            "max_attempts": 2,
            "inserted_at": "1970-01-01T00:00:00.000Z",
            "started_at": "1970-01-01T00:00:01.500Z",
            "finished_at": "1970-01-01T00:00:02.250Z",
            "error": "RuntimeError: declined",
        },
    }


# --- the events of a stream -----------------------------------------------------------------
def _job(**fields: Any) -> JobRecord:
    base: dict[str, Any] = {
        "id": 1,
        "kind": "k",
        "queue": "default",
        "args": {},
        "meta": {},
        "tenant": None,
        "state": "available",
        "priority": 0,
        "attempt": 0,
        "max_attempts": 3,
        "crashes": 0,
        "delivery": "at_least_once",
        "timeout": None,
        "errors": [],
        "scheduled_at": 0.0,
        "unique_key": None,
        "lease_owner": None,
        "lease_token": None,
        "lease_expires_at": None,
        "result": None,
        "result_ttl": 60.0,
        "inserted_at": 0.0,
        "attempted_at": None,
        "finished_at": None,
    }
    return JobRecord(**{**base, **fields})


def _names(before: JobRecord | None, now: JobRecord | None) -> list[str]:
    return [name for name, _ in changes(before, now)]


def test_a_stream_opens_with_where_the_job_is() -> None:
    assert _names(None, _job()) == ["waiting"]
    assert _names(None, _job(state="running", attempt=1)) == ["started"]
    running = _job(state="running", attempt=1, progress_done=3.0, progress_total=10.0)
    assert _names(None, running) == ["started", "progress"]
    assert _names(None, _job(state="completed", attempt=1, result=5)) == ["completed"]
    assert _names(None, None) == ["gone"]


def test_what_happened_between_two_readings_comes_in_order() -> None:
    waiting = _job()
    err = [{"attempt": 1, "error": "E: one"}]
    retrying = _job(state="retryable", attempt=1, errors=err)
    # Started and failed between two readings: both are told, in order.
    assert _names(waiting, retrying) == ["started", "failed"]
    err2 = [*err, {"attempt": 2, "error": "E: two"}]
    dead = _job(state="dead", attempt=2, errors=err2, finished_at=9.0)
    assert _names(waiting, dead) == ["started", "failed", "started", "failed", "dead"]
    running = _job(state="running", attempt=1)
    assert _names(running, dead) == ["failed", "started", "failed", "dead"]
    events = changes(running, dead)
    assert [d["data"]["attempt"] for _, d in events] == [1, 2, 2, 2]
    assert [d["data"].get("error") for _, d in events] == ["E: one", None, "E: two", "E: two"]
    done = _job(state="completed", attempt=1, result={"ok": True}, finished_at=3.0)
    assert _names(running, done) == ["completed"]
    assert changes(running, done)[0][1]["data"]["result"] == {"ok": True}
    halfway = dataclasses.replace(running, progress_done=1.0, progress_total=2.0)
    assert _names(running, halfway) == ["progress"]
    assert _names(halfway, halfway) == []
    assert _names(running, None) == ["gone"]
