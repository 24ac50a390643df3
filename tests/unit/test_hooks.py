"""Hooks and middleware (docs/hooks.md): middleware wraps enqueue and sync and async runs,
lifecycle events fire in order, and a broken hook is logged without losing a job."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest

import offload
from offload.telemetry import EVENTS, JobEvent
from offload.testing import drain


def _app(tmp_path: Path) -> offload.Offload:
    return offload.Offload(f"sqlite:///{tmp_path / 'hooks.db'}")


def test_middleware_wraps_sync_and_async_runs_and_sees_outcomes(tmp_path: Path) -> None:
    app = _app(tmp_path)
    seen: list[tuple[Any, ...]] = []

    @app.middleware
    def record(run: offload.JobRun) -> Any:
        seen.append(("before", run.kind, run.attempt, offload.telemetry.current_run() is run))
        yield
        seen.append(("after", run.kind, run.outcome, type(run.exception).__name__))

    @app.job(max_attempts=2)
    def boom() -> None:
        raise ValueError("bad")

    @app.job
    async def fine(x: int) -> int:
        return x

    boom.enqueue()
    fine.enqueue(1)
    drain(app, with_scheduled=True)
    assert seen == [
        ("before", "boom", 1, True),
        ("after", "boom", "retried", "ValueError"),
        ("before", "boom", 2, True),
        ("after", "boom", "dead", "ValueError"),
        ("before", "fine", 1, True),
        ("after", "fine", "succeeded", "NoneType"),
    ]


def test_enqueue_middleware_changes_meta_and_sees_ids(tmp_path: Path) -> None:
    app = _app(tmp_path)
    ids: list[int | None] = []

    @app.enqueue_middleware
    def stamp(jobs: list[offload.EnqueuedJob]) -> Any:
        for job in jobs:
            job.meta["stamp"] = job.kind
        yield
        ids.extend(job.id for job in jobs)

    @app.job
    def noop() -> None:
        pass

    handle = noop.enqueue()
    assert ids == [handle.id]
    assert app.store.job_get(handle.id).meta["stamp"] == "noop"


def test_lifecycle_events_in_order(tmp_path: Path) -> None:
    app = _app(tmp_path)
    events: list[tuple[str, str | None]] = []
    for name in EVENTS:
        app.on(name)(lambda e: events.append((e.name, e.job.kind if e.job else None)))

    @app.job(max_attempts=2)
    def boom() -> None:
        raise ValueError("bad")

    boom.enqueue()
    drain(app, with_scheduled=True)
    assert events == [
        ("enqueued", "boom"),
        ("claimed", None),
        ("started", "boom"),
        ("failed", "boom"),
        ("retried", "boom"),
        ("claimed", None),
        ("started", "boom"),
        ("failed", "boom"),
        ("dead", "boom"),
    ]


def test_shed_event_names_the_reason(tmp_path: Path) -> None:
    app = _app(tmp_path)
    shed: list[JobEvent] = []
    app.on("shed")(shed.append)

    @app.job
    def late() -> None:
        pass

    late.enqueue()
    app.rules.add("late", reason="switched off")  # after the enqueue: shed at the claim
    drain(app)
    assert shed and shed[0].job is not None and shed[0].job.kind == "late"
    assert shed[0].reason


def test_broken_hooks_are_logged_and_lose_no_job(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = _app(tmp_path)

    @app.middleware
    def before(run: offload.JobRun) -> Any:
        raise RuntimeError("before")
        yield

    @app.middleware
    def after(run: offload.JobRun) -> Any:
        yield
        raise RuntimeError("after")

    @app.enqueue_middleware
    def enqueue(jobs: list[offload.EnqueuedJob]) -> Any:
        raise RuntimeError("enqueue")
        yield

    @app.on("succeeded")
    def callback(event: JobEvent) -> None:
        raise RuntimeError("callback")

    @app.job
    def noop() -> str:
        return "done"

    with caplog.at_level(logging.ERROR, "offload.hooks"):
        handle = noop.enqueue()
        result = drain(app)
    assert result.completed == 1
    assert handle.result(timeout=0) == "done"
    logged = caplog.text
    for name in ("before", "after", "enqueue", "callback"):
        assert name in logged


def test_middleware_must_be_a_generator(tmp_path: Path) -> None:
    app = _app(tmp_path)
    with pytest.raises(TypeError, match="generator"):
        app.middleware(lambda run: None)
    with pytest.raises(ValueError, match="unknown event"):
        app.on("finished")(print)


def test_import_offload_loads_no_integration_package() -> None:
    import subprocess
    import sys

    code = (
        "import sys, offload\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('opentelemetry', 'sentry_sdk') or m.startswith('offload.integrations')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_timed_out_sync_job_leaves_its_middleware(tmp_path: Path) -> None:
    from tests._wait import eventually

    app = _app(tmp_path)
    ended: list[tuple[str | None, str | None]] = []

    @app.middleware
    def record(run: offload.JobRun) -> Any:
        yield
        ended.append((run.outcome, run.error))

    @app.job(timeout=0.2, max_attempts=1)
    def spin() -> None:
        while True:
            time.sleep(0.01)

    spin.enqueue()
    assert drain(app).dead == 1
    eventually(lambda: ended, what="the middleware left")
    assert ended[0][0] == "dead" and "JobTimeoutError" in (ended[0][1] or "")
