"""Fixtures of the fault tests: the fault app on a fresh store (every engine), a process
starter that kills what is left, and the ledger with its checker (`_ledger.py`).

Fault tests marked `slow` (soaks, a million jobs) are left out of a run that names no marker
expression (tests/conftest.py), so that `python3 -m pytest` (CI) runs the quick ones; `-m slow`
runs the others and `-m "slow or not slow"` all of them (docs/reliability.md).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from offload import Offload
from tests.integration._harness import Procs

from ._ledger import Ledger
from .faultapp import make_app

APP = "tests.faults.faultapp:app"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


@pytest.fixture
def app(store_url: str) -> Iterator[Offload]:
    """The fault app on a fresh, migrated store."""
    application = make_app(store_url)
    application.store.migrate()
    yield application
    application.close()


@pytest.fixture
def procs(app: Offload, workdir: Path) -> Iterator[Procs]:
    """Starts processes on the app's store (`procs.worker(..., app=APP)`); kills every one
    left at teardown."""
    started = Procs(app.config.url, workdir)
    yield started
    started.cleanup()


@pytest.fixture
def ledger(workdir: Path) -> Ledger:
    return Ledger(workdir)


@pytest.fixture
def engine(store_url: str) -> str:
    return "sqlite" if store_url.startswith("sqlite") else "postgres"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Generator[None, Any, Any]:
    """Attach the tail of every process's log to a failed test's report."""
    report = yield
    if report.when == "call" and report.failed:
        started = getattr(item, "funcargs", {}).get("procs")
        if isinstance(started, Procs) and started.started:
            report.sections.append(("offload process logs", started.logs()))
    return report
