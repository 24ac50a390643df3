"""The store's clock, wake-up listener and close."""

from __future__ import annotations

from offload.store import open_store
from offload.store._contract import Store

from ._helpers import between, claim_one, get, insert_one


def test_job_times_come_from_the_store_clock(store: Store) -> None:
    before = store.now()
    job_id = insert_one(store)
    claim_one(store)
    after = store.now()

    assert isinstance(before, float)
    assert before <= after
    r = get(store, job_id)
    assert between(before, r.inserted_at, after)
    assert between(before, r.attempted_at, after)


def test_listener_wakes_when_a_job_is_inserted(store: Store) -> None:
    listener = store.listener(["default"])
    try:
        insert_one(store)
        # A generous timeout: the call returns as soon as the listener sees the insert.
        assert listener.wait(timeout=10.0) is True
    finally:
        listener.close()


def test_a_closed_store_keeps_its_jobs_for_the_next_one(store: Store, store_url: str) -> None:
    job_id = insert_one(store, args={"kept": True})
    store.close()

    reopened = open_store(store_url)
    try:
        assert get(reopened, job_id).args == {"kept": True}
    finally:
        reopened.close()
