"""The SQLite doorbell: commits that make jobs available wake listening workers at once."""

from __future__ import annotations

import os
import select
from collections.abc import Iterator
from pathlib import Path

import pytest

from offload.store._contract import Lease
from offload.store.sqlite._doorbell import Doorbell, supported
from offload.store.sqlite._engine import SQLiteStore

from ._helpers import claim_one, insert_one

pytestmark = pytest.mark.skipif(not supported(), reason="the doorbell uses Linux sockets")

# Generous: a ring arrives in microseconds; the wait only bounds a failing test.
RUNG_WITHIN = 10.0


def _rung(bell: object) -> bool:
    return bool(select.select([bell], [], [], RUNG_WITHIN)[0])


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "offload.db")


@pytest.fixture
def store(db: str) -> Iterator[SQLiteStore]:
    s = SQLiteStore(f"sqlite:///{db}")
    s.migrate()
    yield s
    s.close()


def test_an_insert_of_an_available_job_rings(store: SQLiteStore, db: str) -> None:
    bell = Doorbell(db).bell()
    assert bell is not None
    try:
        assert not select.select([bell], [], [], 0)[0]
        insert_one(store)
        assert _rung(bell)
        bell.drain()
        assert not select.select([bell], [], [], 0)[0]
    finally:
        bell.close()


def test_a_delayed_job_does_not_ring(store: SQLiteStore, db: str) -> None:
    bell = Doorbell(db).bell()
    assert bell is not None
    try:
        insert_one(store, delay=3600.0)
        assert not select.select([bell], [], [], 0)[0]
    finally:
        bell.close()


def test_a_released_job_rings(store: SQLiteStore, db: str) -> None:
    insert_one(store)
    job = claim_one(store)
    bell = Doorbell(db).bell()
    assert bell is not None
    try:
        assert store.job_release_many([Lease(job.id, job.lease_token)]) == 1
        assert _rung(bell)
    finally:
        bell.close()


def test_a_listener_wakes_on_a_ring_alone(db: str) -> None:
    store = SQLiteStore(f"sqlite:///{db}", poll_interval=3600.0)
    store.migrate()
    listener = store.listener(["default"])
    try:
        Doorbell(db).ring()  # no commit: only the ring can wake it
        assert listener.wait(timeout=RUNG_WITHIN) is True
    finally:
        listener.close()
        store.close()


def test_a_dead_listener_s_marker_is_removed_by_the_next_ring(store: SQLiteStore, db: str) -> None:
    bell = Doorbell(db).bell()
    assert bell is not None
    bell.sock.close()  # as a SIGKILL leaves it: the socket gone, the marker still there
    assert os.path.exists(bell.marker)

    insert_one(store)

    assert not os.path.exists(bell.marker)


def test_a_closed_listener_leaves_no_marker(store: SQLiteStore, db: str) -> None:
    listener = store.listener(["default"])
    folder = Doorbell(db).folder
    assert len(os.listdir(folder)) == 1
    listener.close()
    assert os.listdir(folder) == []
