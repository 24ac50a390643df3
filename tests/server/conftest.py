"""Fixtures for the HTTP server tests: an app on a fresh store (every engine), and clients
with and without tokens. Helpers live in `_helpers.py`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from offload import Offload
from offload.server import ExternalKind, create_app

from ._helpers import BASE, TOKENS, MakeClient, declare


@pytest.fixture
def app(store_url: str) -> Iterator[Offload]:
    """An application on a fresh store, once per engine."""
    application = declare(Offload(store_url, lease_seconds=30))
    yield application
    application.close()


@pytest.fixture
def sqlite_app(sqlite_url: str) -> Iterator[Offload]:
    """An application on a fresh SQLite store, for tests that need one engine only."""
    application = declare(Offload(sqlite_url, lease_seconds=30))
    yield application
    application.close()


@pytest.fixture
def make_client() -> Iterator[MakeClient]:
    """Build a TestClient (lifespan running) for an app and server options."""
    clients: list[TestClient] = []

    def make(application: Offload, **options: Any) -> TestClient:
        options.setdefault("external_kinds", (ExternalKind("js.add", "node"),))
        # Counts read fresh on each load, so a test sees what it just did (the cache that
        # shares them between loads has tests of its own, test_shared_reads.py).
        options.setdefault("counts_cache_seconds", 0.0)
        client = TestClient(create_app(application, **options), base_url=BASE)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(app: Offload, make_client: MakeClient) -> TestClient:
    """A client of a server without tokens (loopback), on every engine."""
    return make_client(app, max_wait=2.0)


@pytest.fixture
def secured(sqlite_app: Offload, make_client: MakeClient) -> TestClient:
    """A client of a server with one token per role; sends no credential by itself."""
    return make_client(sqlite_app, tokens=TOKENS, max_wait=2.0)
