"""Sentry (offload.integrations.sentry): failed attempts are reported with the job's context,
the attempt that makes a job dead at level fatal with a dead tag; successes and throttles are
not reported. The real SDK, with a transport that keeps what it would send."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

import offload
from offload.integrations.sentry import instrument
from offload.testing import drain


class Capturing(Transport):
    """Keeps the events the SDK would send."""

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.events: list[dict[str, Any]] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        event = envelope.get_event()
        if event is not None:
            self.events.append(event)


@pytest.fixture
def sent() -> Iterator[list[dict[str, Any]]]:
    transport = Capturing()
    sentry_sdk.init(
        dsn="https://key@sentry.invalid/1", transport=transport, default_integrations=False
    )
    yield transport.events
    sentry_sdk.get_client().close(timeout=0)
    sentry_sdk.init()  # a client that sends nothing, for the tests after this one


def test_failed_attempts_are_reported_with_the_jobs_context(
    tmp_path: Path, sent: list[dict[str, Any]]
) -> None:
    app = offload.Offload(f"sqlite:///{tmp_path / 'sentry.db'}")
    instrument(app)
    instrument(app)  # twice: one report per failure all the same

    @app.job(max_attempts=2, tenant="{account}")
    def charge(account: str) -> None:
        raise ValueError(f"card declined for {account}")

    @app.job
    def fine() -> None:
        pass

    @app.job
    def busy() -> None:
        raise offload.Throttled(retry_after=60)

    handle = charge.options(meta={"correlation_id": "req-7"}).enqueue("acme")
    fine.enqueue()
    busy.enqueue()
    drain(app, with_scheduled=True)
    sentry_sdk.flush()

    assert len(sent) == 2  # two failed attempts of charge; nothing for fine or the throttle
    retried, dead = sent
    for event, attempt in ((retried, 1), (dead, 2)):
        (exc,) = event["exception"]["values"]
        assert exc["type"] == "ValueError" and "card declined" in exc["value"]
        tags = event["tags"]
        assert tags["offload.kind"] == "charge"
        assert tags["offload.job_id"] == str(handle.id)
        assert tags["offload.attempt"] == str(attempt)
        assert tags["offload.tenant"] == "acme"
        assert tags["offload.correlation_id"] == "req-7"
        assert event["contexts"]["offload job"]["id"] == handle.id
    assert retried["level"] == "error" and retried["tags"]["offload.dead"] == "no"
    assert dead["level"] == "fatal" and dead["tags"]["offload.dead"] == "yes"
    assert dead["tags"]["offload.outcome"] == "dead"
