"""Webhooks: a job's end posted to the URL it names, signed as Standard Webhooks says.

The store inserts a delivery job (kind `offload.webhook`) in the transaction that ends a job
whose meta names a URL (offload/jobs/_notify.py), with a snapshot of the job as it ended. A
worker runs it like any job: this module's `deliver` posts the event, signed with every
current secret (`webhook-signature` holds one signature per secret, so that receivers verify
with the old secret or the new one while a secret is rotated), and a failed post (no answer,
or an answer other than 2xx) is retried with backoff, as any job's failed attempt is.

Settings (`app.webhooks`): the signing secrets (`$OFFLOAD_WEBHOOK_SECRETS`, whitespace or comma
separated, read at each delivery unless set in code), the hosts notify URLs may name
(`$OFFLOAD_WEBHOOK_ALLOW`; None: any), the request timeout and the retry backoff.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from offload._backoff import BackoffFn, Exponential, as_backoff
from offload._errors import ConfigurationError
from offload.jobs._notify import NOTIFY_META, check_notify, url_problem
from offload.jobs._type import JobOptions, JobType
from offload.store._contract import NewJob

if TYPE_CHECKING:
    from offload.app._offload import Offload

KIND = "offload.webhook"
SECRETS_ENV = "OFFLOAD_WEBHOOK_SECRETS"
ALLOW_ENV = "OFFLOAD_WEBHOOK_ALLOW"
# Delivery attempts the store gives each event (the trigger of migrations 0013/0014 sets it):
# with the default backoff, about 17 minutes of retries, then the delivery is dead.
MAX_ATTEMPTS = 10
DEFAULT_BACKOFF: BackoffFn = Exponential(base=2.0, factor=2.0, maximum=600.0)
USER_AGENT = "offload-webhooks"


class WebhookError(Exception):
    """A delivery that did not succeed: the receiver's status, or why there was none."""


def _split(text: str) -> list[str]:
    return [part for part in re.split(r"[\s,]+", text) if part]


class Webhooks:
    """An app's webhook settings: `secrets` (sign with each), `allow` (host patterns notify URLs
    may name; None: any), `timeout` (seconds per request) and `backoff` between attempts.
    Secrets and the allow-list default to `$OFFLOAD_WEBHOOK_SECRETS` and
    `$OFFLOAD_WEBHOOK_ALLOW`, read when used, so that a secret is never written in code."""

    def __init__(
        self,
        secrets: Sequence[str] | None = None,
        allow: Sequence[str] | None = None,
        timeout: float = 10.0,
        backoff: BackoffFn | float | None = None,
    ) -> None:
        self._secrets = None if secrets is None else list(secrets)
        self._allow = None if allow is None else list(allow)
        self.timeout = timeout
        self.backoff = backoff

    @property
    def secrets(self) -> list[str]:
        """The current signing secrets (`whsec_…`), newest first by convention."""
        if self._secrets is not None:
            return list(self._secrets)
        return _split(os.environ.get(SECRETS_ENV, ""))

    @secrets.setter
    def secrets(self, value: Sequence[str] | None) -> None:
        if isinstance(value, str):
            value = _split(value)
        self._secrets = None if value is None else list(value)

    @property
    def allow(self) -> list[str] | None:
        """Host patterns notify URLs may name (`hooks.example.com`, `*.example.com`,
        `10.0.0.5:8443`); None lets any host through."""
        if self._allow is not None:
            return list(self._allow)
        text = os.environ.get(ALLOW_ENV)
        return None if text is None else _split(text)

    @allow.setter
    def allow(self, value: Sequence[str] | None) -> None:
        if isinstance(value, str):
            value = _split(value)
        self._allow = None if value is None else list(value)

    def check(self, jobs: Sequence[NewJob]) -> None:
        """Refuse (InvalidArgumentsError) a job whose notify URL is malformed or not allowed."""
        allow: list[str] | None = None
        read = False
        for job in jobs:
            url = job.meta.get(NOTIFY_META) if job.meta else None
            if url is None:
                continue
            if not read:
                allow, read = self.allow, True
            check_notify(url, allow)

    def signature(self, msg_id: str, timestamp: datetime, body: bytes) -> str:
        """The `webhook-signature` header: one `v1,…` signature per current secret."""
        try:
            from standardwebhooks.webhooks import Webhook
        except ImportError:
            raise ConfigurationError(
                "signing webhooks needs the standardwebhooks package where workers run: "
                "pip install 'offload[webhooks]'"
            ) from None
        secrets = self.secrets
        if not secrets:
            raise ConfigurationError(
                f"no webhook signing secret: set ${SECRETS_ENV} (e.g. whsec_ and 24 random "
                "bytes in base64) where workers run, or app.webhooks.secrets"
            )
        try:
            return " ".join(Webhook(s).sign(msg_id, timestamp, body) for s in secrets)
        except Exception as exc:  # noqa: BLE001 - a malformed secret: say which setting
            raise ConfigurationError(
                f"a webhook secret cannot be used ({type(exc).__name__}: {exc}); secrets are "
                "whsec_ followed by base64"
            ) from None

    def delay(self, attempt: int) -> float:
        """Seconds before the next delivery attempt."""
        return (
            float(as_backoff(self.backoff)(attempt))
            if self.backoff is not None
            else (DEFAULT_BACKOFF(attempt))
        )


def iso(ts: Any) -> str | None:
    """An event's epoch seconds as RFC 3339 UTC text with milliseconds."""
    if not isinstance(ts, (int, float)) or isinstance(ts, bool):
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_document(kind: str, job: dict[str, Any]) -> dict[str, Any]:
    """The payload of an event about one job, as webhooks and the event stream send it:
    `{"type", "timestamp", "data"}` (the Standard Webhooks shape). `job` holds the job's
    fields by name (times as epoch seconds)."""
    data: dict[str, Any] = {
        "id": job.get("id"),
        "kind": job.get("kind"),
        "queue": job.get("queue"),
        "state": job.get("state"),
        "attempt": job.get("attempt"),
        "max_attempts": job.get("max_attempts"),
        "inserted_at": iso(job.get("inserted_at")),
        "started_at": iso(job.get("attempted_at")),
        "finished_at": iso(job.get("finished_at")),
    }
    if "result" in job and job.get("state") == "completed":
        data["result"] = job["result"]
    for extra in ("error", "progress"):
        if job.get(extra) is not None:
            data[extra] = job[extra]
    at = job.get("at", job.get("finished_at"))
    return {"type": kind, "timestamp": iso(at), "data": data}


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a place to go: following one could reach a host that the
    allow-list leaves out."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def post(url: str, headers: dict[str, str], body: bytes, timeout: float) -> int:
    """POST `body` and return the status; WebhookError when none came back."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return int(exc.code)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WebhookError(f"POST {url} failed: {reason}") from None


def deliverer(app: Offload) -> Callable[..., dict[str, Any]]:
    """The function of the `offload.webhook` job type of `app`."""

    def deliver(url: str, event: dict[str, Any]) -> dict[str, Any]:
        """Post one job event to `url`, signed; fail (to be retried) unless it answers 2xx."""
        from offload.app._context import current_job

        settings = app.webhooks
        problem = url_problem(url)
        if problem is not None:
            raise ConfigurationError(f"notify {problem}")
        check_notify(url, settings.allow)  # the allow-list where the request is made
        job = current_job()
        msg_id = f"msg_offload_{job.id}"  # the same for every attempt of one delivery
        prebuilt = event.get("document")  # an alert's event (app/_alerts.py) comes whole
        document = (
            prebuilt
            if isinstance(prebuilt, dict)
            else event_document(str(event.get("type")), event)
        )
        body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
        now = datetime.now(UTC)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": settings.signature(msg_id, now, body),
        }
        status = post(url, headers, body, settings.timeout)
        if not 200 <= status < 300:
            raise WebhookError(f"POST {url} answered {status}")
        return {"status": status, "webhook_id": msg_id}

    return deliver


def install(app: Offload) -> JobType:
    """Declare the `offload.webhook` job type on `app` (once), for its workers to run. It is
    declared in worker processes only, so that no API enqueues it by name."""
    existing = app.jobs.get(KIND)
    if existing is not None:
        return existing
    options = JobOptions(
        max_attempts=MAX_ATTEMPTS,
        backoff=lambda attempt: app.webhooks.delay(attempt),
        timeout=None,
        result_ttl=86400.0,
    )
    job_type = JobType(app, deliverer(app), KIND, options)
    app.jobs[KIND] = job_type
    return job_type
