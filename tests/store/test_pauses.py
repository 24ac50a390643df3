"""Paused queues and kinds in the store: pause, resume and list; claims that leave paused kinds
out (plain and through limits); running jobs asked to stop in the pause's transaction."""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg
import pytest

from offload.dispatch._limits import LimitSpec
from offload.store._contract import ClaimParams, Store
from offload.store._pauses import KIND, QUEUE
from offload.store.sqlite._pauses import pauses_sql

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


def test_jobs_claimed_after_a_pause_are_asked_to_stop_when_a_worker_sees_it(store: Store) -> None:
    store.pause_add(KIND, "A")
    late, other = insert(store, new_job("A"), new_job("B"))
    claim(store)  # a worker that has not read the pause yet
    assert store.pause_stop_running() == 1
    assert [stop_request(store, i) for i in (late, other)] == ["pause", None]
    assert store.pause_stop_running() == 0


def _fill(store: Store, n: int) -> None:
    for start in range(0, n, 1000):
        store.job_insert_many(
            [new_job(kind=f"k{i % 3}", args={"i": i}) for i in range(start, start + 1000)]
        )


@pytest.mark.engine("sqlite")
def test_sqlite_claims_without_paused_kinds_scan_the_claim_index(store: Store) -> None:
    _fill(store, 2000)
    sql = pauses_sql()
    params = {"queue": "default", "kinds": '["k1"]', "n": 32}
    page = {**params, "priority": 0, "order_key": 0.0, "id": 0, "excluded": "[]"}
    with sqlite3.connect(store.path) as conn:  # type: ignore[attr-defined]
        for name, args in (
            ("job_claim_candidates_unpaused", params),
            ("job_claim_page_unpaused", page),
        ):
            plan = conn.execute("EXPLAIN QUERY PLAN " + sql[name], args).fetchall()
            text = "\n".join(str(row[-1]) for row in plan)
            assert "USING INDEX offload_jobs_claim" in text, (name, text)
            assert "TEMP B-TREE" not in text and "state_kind" not in text, (name, text)


@pytest.mark.engine("postgres")
def test_postgres_claims_without_paused_kinds_scan_the_claim_index(store: Store) -> None:
    _fill(store, 1000)
    q = store._q  # type: ignore[attr-defined]
    claim_args = {
        "queues": ["default"],
        "limit": 32,
        "worker_id": "w",
        "token": 1,
        "lease_seconds": 60.0,
        "start": 4,
        "everything": False,
        "skip_kinds": ["k1"],
    }
    page = {
        "queue": "default",
        "priority": 0,
        "order_key": 0.0,
        "id": 0,
        "excluded": [],
        "n": 32,
        "skip_kinds": ["k1"],
    }
    with psycopg.connect(store.conninfo, autocommit=True) as conn:  # type: ignore[attr-defined]
        for name, args in (("job_claim_unpaused", claim_args), ("job_claim_page_unpaused", page)):
            with conn.transaction(force_rollback=True):
                plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + q[name], args))
            assert "Index Scan using offload_jobs_claim on offload_jobs" in plan, (name, plan)
            assert "Sort Key: offload_jobs.priority" not in plan, (name, plan)


def _statement(text: str, *, drop: str = "") -> list[str]:
    """A statement's lines without comments, blank lines and the line `drop`."""
    lines = [line.strip() for line in text.splitlines()]
    return [line for line in lines if line and not line.startswith("--") and line != drop]


@pytest.mark.parametrize(
    ("dialect", "file", "base", "variant", "kind_filter"),
    [
        (
            "sqlite",
            "queries",
            "job_claim_candidates",
            "job_claim_candidates_unpaused",
            "AND kind NOT IN (SELECT value FROM json_each(:kinds))",
        ),
        (
            "sqlite",
            "dispatch",
            "job_claim_page",
            "job_claim_page_unpaused",
            "AND kind NOT IN (SELECT value FROM json_each(:kinds))",
        ),
        (
            "postgres",
            "queries",
            "job_claim",
            "job_claim_unpaused",
            "AND kind <> ALL(%(skip_kinds)s::text[])",
        ),
        (
            "postgres",
            "dispatch",
            "job_claim_page",
            "job_claim_page_unpaused",
            "AND kind <> ALL(%(skip_kinds)s::text[])",
        ),
    ],
)
def test_claim_variants_differ_from_the_claims_only_by_the_kind_filter(
    dialect: str, file: str, base: str, variant: str, kind_filter: str
) -> None:
    from offload.store._sql import queries

    original = _statement(queries(dialect, file)[base])
    changed = _statement(queries(dialect, "pauses")[variant], drop=kind_filter)
    if base == "job_claim_candidates":  # positional there, named in the variant
        changed = [line.replace(":queue", "?").replace(":n", "?") for line in changed]
    assert changed == original
    assert kind_filter in queries(dialect, "pauses")[variant]


@pytest.mark.parametrize(
    ("name", "problem"),
    [("a\nb", "control character"), (" emails", "white space"), ("emails ", "white space")],
)
def test_a_name_no_queue_or_kind_can_have_is_refused(store: Store, name: str, problem: str) -> None:
    for scope in (QUEUE, KIND):
        with pytest.raises(ValueError, match=problem):
            store.pause_add(scope, name)
    assert store.pause_list() == []
