"""offload.testing: drain, inline mode and enqueue assertions, on the real store."""

from __future__ import annotations

from pathlib import Path

import pytest

from offload import Offload
from offload.testing import assert_enqueued, drain, inline, refute_enqueued


@pytest.fixture
def app(tmp_path: Path) -> Offload:
    app = Offload(f"sqlite:///{tmp_path / 'jobs.db'}")
    calls: list[str] = []
    app.calls = calls  # type: ignore[attr-defined]

    @app.job(queue="emails")
    def welcome(email: str) -> str:
        calls.append(email)
        followup.enqueue(email)
        return f"sent {email}"

    @app.job()
    async def followup(email: str) -> None:
        calls.append(f"followup {email}")

    @app.job(max_attempts=2, backoff=0)
    def broken() -> None:
        raise RuntimeError("always")

    return app


def test_assert_and_drain(app: Offload) -> None:
    refute_enqueued(app, "welcome")
    job = app.jobs["welcome"].enqueue("ada@example.com")
    assert_enqueued(app, "welcome", args={"email": "ada@example.com"}, queue="emails", count=1)
    with pytest.raises(AssertionError, match="expected enqueued welcome"):
        assert_enqueued(app, "welcome", args={"email": "bob@example.com"})
    result = drain(app)
    assert result.completed == 2
    assert app.calls == ["ada@example.com", "followup ada@example.com"]  # type: ignore[attr-defined]
    assert job.result(timeout=0) == "sent ada@example.com"
    refute_enqueued(app)


def test_drain_retries_and_dead(app: Offload) -> None:
    job = app.jobs["broken"].enqueue()
    result = drain(app, with_scheduled=True)
    assert result.dead == 1 and result.retried == 1
    assert job.refresh().state == "dead"
    assert [e["attempt"] for e in job.errors] == [1, 2]
    assert "RuntimeError: always" in job.errors[0]["traceback"]


def test_inline_runs_at_enqueue(app: Offload) -> None:
    with inline(app):
        job = app.jobs["welcome"].enqueue("eve@example.com")
        assert job.refresh().state == "completed"
    assert app.calls == ["eve@example.com", "followup eve@example.com"]  # type: ignore[attr-defined]
    app.jobs["welcome"].enqueue("later@example.com")
    assert_enqueued(app, "welcome", args={"email": "later@example.com"})
