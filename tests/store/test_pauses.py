"""Paused queues and kinds in the store: pause, resume and list; claims that leave paused kinds
out (plain and through limits); running jobs asked to stop in the pause's transaction."""

from __future__ import annotations

from typing import Any

import pytest

from offload.dispatch._limits import LimitSpec
from offload.store._contract import ClaimParams, Store
from offload.store._pauses import KIND, QUEUE

from ._helpers import between, claim, insert, new_job
from ._raw import _run


def stop_request(store: Store, job_id: int) -> Any:
    if store.engine == "sqlite":
        return _run(store, None, "SELECT stop_request FROM offload_jobs WHERE id = ?", job_id)
    sql = "SELECT stop_request FROM {schema}.offload_jobs WHERE id = %s"
    return _run(store, None, sql, job_id)


def claim_unpaused(store: Store, skip: list[str], queues: tuple[str, ...] = ("default",)) -> Any:
    return store.job_claim(ClaimParams(list(queues), 100, "w1", 600.0, skip_kinds=skip))


def test_pauses_are_added_listed_and_removed(store: Store) -> None:
    before = store.now()
    added = store.pause_add(QUEUE, "emails", by="ops@example.com", reason="mail server down")
    again = store.pause_add(QUEUE, "emails", by="someone else")
    kind = store.pause_add(KIND, "Resize")
    after = store.now()

    assert added.new and not again.new and kind.new
    assert again.pause == added.pause  # the first pause is kept as it was
    p = added.pause
    assert (p.scope, p.name, p.paused_by, p.reason) == (
        "queue",
        "emails",
        "ops@example.com",
        "mail server down",
    )
    assert between(before, p.paused_at, after)
    assert store.pause_list() == [kind.pause, added.pause]  # by scope, then name

    assert store.pause_remove(QUEUE, "emails") is True
    assert store.pause_remove(QUEUE, "emails") is False
    assert store.pause_list() == [kind.pause]


@pytest.mark.parametrize(
    ("scope", "name", "problem"),
    [("tenant", "x", "scope must be"), (QUEUE, "", "non-empty"), (KIND, "k" * 201, "at most")],
)
def test_bad_pauses_are_refused(store: Store, scope: str, name: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        store.pause_add(scope, name)
    assert store.pause_list() == []


def test_claims_leave_paused_kinds_out(store: Store) -> None:
    a, b, c = insert(store, new_job("A"), new_job("B"), new_job("A"))
    got = claim_unpaused(store, ["A"])
    assert [j.id for j in got] == [b]
    assert claim_unpaused(store, ["A"]) == []
    assert sorted(j.id for j in claim(store)) == [a, c]  # nothing skipped: all of them


def test_claims_through_limits_leave_paused_kinds_out(store: Store) -> None:
    spec = LimitSpec(concurrency=5)
    a, b = insert(
        store,
        new_job("A", limit_key="shop:1", limit=spec),
        new_job("B", limit_key="shop:1", limit=spec),
    )
    assert [j.id for j in claim_unpaused(store, ["A"])] == [b]
    assert [j.id for j in claim(store)] == [a]


def test_pausing_asks_running_jobs_to_stop_and_resuming_takes_it_back(store: Store) -> None:
    a, b, other = insert(
        store, new_job("A", queue="q"), new_job("B", queue="q"), new_job("A", queue="r")
    )
    claim(store, ["q", "r"])
    assert store.pause_add(KIND, "A").stopping == 2
    assert store.pause_add(QUEUE, "q").stopping == 1  # b; a was asked already
    assert [stop_request(store, i) for i in (a, b, other)] == ["pause"] * 3

    store.pause_remove(QUEUE, "q")  # a and other stay paused by their kind
    assert [stop_request(store, i) for i in (a, b, other)] == ["pause", None, "pause"]
    store.pause_remove(KIND, "A")
    assert [stop_request(store, i) for i in (a, b, other)] == [None, None, None]
