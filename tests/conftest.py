"""Fixtures shared by every test layer: a store URL per engine, each test isolated.

SQLite tests get a temp file. PostgreSQL tests get a schema of their own in the database named
by `$OFFLOAD_TEST_POSTGRES` (default postgresql://postgres@127.0.0.1:5432/test); without a
server they skip on a developer's machine and fail in CI (`CI=true`).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from offload.store import open_store
from offload.store._contract import Store
from tests._engines import (  # noqa: F401 - re-exported for tests that import them here
    ENGINES,
    PG_URL,
    _drop_schema,
    _need_postgres,
    drop_schema,
    for_other_engine,
    make_url,
    marked_engines,
    need_postgres,
)


@pytest.fixture(params=ENGINES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty store, once per engine (only the engines of an `engine` marker:
    `pytest_collection_modifyitems` deselects the other copies)."""
    url, schema = make_url(request.param, tmp_path)
    yield url
    if schema:
        drop_schema(schema)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An opened, migrated store, once per engine."""
    s = open_store(store_url)
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A URL of an empty SQLite store, for tests of SQLite-only behaviour."""
    return f"sqlite:///{tmp_path / 'offload.db'}"


def pytest_configure(config: pytest.Config) -> None:
    """Let Ctrl-C reach the commands the tests start: a shell starts a background job (`pytest
    &`, or a CI step without job control) with SIGINT ignored, every process it starts inherits
    that, and a Python started with SIGINT ignored keeps ignoring it, so a test that stops
    `offload stats --watch` with SIGINT would wait for an exit that never comes."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_itemcollected(item: pytest.Item) -> None:
    """Refuse an `engine` marker that names no known engine, or one on a test that takes no
    engine fixture (it would run on no engine in particular, and mean nothing)."""
    if marked_engines(item) is not None and "store_url" not in getattr(item, "fixturenames", ()):
        raise pytest.UsageError(
            f"{item.nodeid}: @pytest.mark.engine needs the test to use the store_url or store "
            "fixture, whose other engines it leaves out"
        )


def _module_scoped(item: pytest.Item) -> bool:
    """Whether `item` uses a fixture made once per module (a throwaway PostgreSQL cluster, a
    built site or wheel, a Django set up in the process)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(
        fixturedef.scope == "module"
        for fixturedefs in info.name2fixturedefs.values()
        for fixturedef in fixturedefs
    )


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups (in each worker)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the copies of engine-marked tests for the engines they are not for, and tests
    marked `slow` (soaks, a million jobs) from a run that names no marker expression:
    `python3 -m pytest` (CI) runs the quick ones, `-m slow` the others and
    `-m "slow or not slow"` all of them (docs/reliability.md).

    Tests run in parallel (pytest-xdist, `--dist loadgroup`): the tests of a module whose
    fixtures are made once per module go to one worker together (an `xdist_group` named after
    the module), so that the fixture is made once, not once on every worker."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None and _module_scoped(item):
            item.add_marker(
                pytest.mark.xdist_group(item.module.__name__ if item.module else item.nodeid)
            )
    other = [item for item in items if for_other_engine(item)]
    if other:
        config.hook.pytest_deselected(items=other)
        items[:] = [item for item in items if not for_other_engine(item)]
    if config.option.markexpr:
        return
    slow = [item for item in items if item.get_closest_marker("slow") is not None]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if item.get_closest_marker("slow") is None]
