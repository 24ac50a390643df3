"""Fixtures of the integration layer: an app on a fresh store, a process starter that cleans
up, and the jobs' ledger. The `store_url` fixture runs every test on every engine."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from offload import Offload

from ._harness import Ledger, Procs
from .jobsapp import make_app


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


@pytest.fixture
def app(store_url: str) -> Iterator[Offload]:
    """The test job app on a fresh, migrated store (migrated here, before any worker starts)."""
    application = make_app(store_url)
    application.store.migrate()
    yield application
    application.close()


@pytest.fixture
def procs(app: Offload, workdir: Path) -> Iterator[Procs]:
    """Starts workers on the app's store; kills every one left at teardown."""
    started = Procs(app.config.url, workdir)
    yield started
    started.cleanup()


@pytest.fixture
def ledger(workdir: Path) -> Ledger:
    return Ledger(workdir)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Generator[None, Any, Any]:
    """Attach the tail of every process's log to a failed test's report."""
    report = yield
    if report.when == "call" and report.failed:
        started = getattr(item, "funcargs", {}).get("procs")
        if isinstance(started, Procs) and started.started:
            report.sections.append(("offload process logs", started.logs()))
    return report
