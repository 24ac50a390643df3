"""Property-based: any sequence of job-state operations keeps the store consistent with a model.

Hypothesis drives inserts, claims, acknowledgements (fresh and stale), heartbeats, starts
recorded, rescues, promotions, retries and cancels against a real engine and checks each job's
state against a model of the lifecycle in DESIGN.md after every step (and the crash accounting
of docs/crashes.md: a rescue charges only jobs whose start was recorded).
"""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from offload.store import open_store
from offload.store._contract import (
    ClaimParams,
    Completion,
    Failure,
    Lease,
    NewJob,
    Store,
)
from tests._engines import drop_schema as _drop_schema
from tests._engines import make_url

FINAL = {"completed", "dead", "cancelled"}


class StoreModel(RuleBasedStateMachine):
    store: Store

    def __init__(self) -> None:
        super().__init__()
        self.state: dict[int, str] = {}
        self.attempts: dict[int, int] = {}
        self.max_attempts: dict[int, int] = {}
        self.delivery: dict[int, str] = {}
        self.tokens: dict[int, int] = {}  # running jobs: their current token
        self.old_tokens: dict[int, int] = {}  # a token that no longer holds
        self.crashes: dict[int, int] = {}
        self.started: dict[int, bool] = {}  # running jobs: whether their start is recorded
        self.isolated: dict[int, bool] = {}
        self.stale_expected = 0
        self.stale_base = self.store.counters().get("stale_acks", 0)
        self.queue = f"q{uuid.uuid4().hex[:8]}"  # each example sees only its own jobs

    @rule(
        n=st.integers(1, 4),
        max_attempts=st.integers(1, 3),
        delivery=st.sampled_from(["at_least_once", "at_most_once"]),
    )
    def insert(self, n: int, max_attempts: int, delivery: str) -> None:
        jobs = [
            NewJob("k", self.queue, {"i": i}, max_attempts=max_attempts, delivery=delivery)
            for i in range(n)
        ]
        for ins in self.store.job_insert_many(jobs):
            self.state[ins.id] = "available"
            self.attempts[ins.id] = 0
            self.max_attempts[ins.id] = max_attempts
            self.delivery[ins.id] = delivery
            self.crashes[ins.id] = 0
            self.isolated[ins.id] = False

    @rule(
        limit=st.integers(1, 3),
        expired=st.booleans(),
        start=st.none() | st.integers(0, 3),
    )
    def claim(self, limit: int, expired: bool, start: int | None) -> None:
        got = self.store.job_claim(
            ClaimParams([self.queue], limit, "w", -1.0 if expired else 600.0, start=start)
        )
        available = sorted(i for i, s in self.state.items() if s == "available")
        assert len(got) == min(limit, len(available))
        assert {j.id for j in got} <= set(available)
        for rank, j in enumerate(got):
            self.state[j.id] = "running"
            self.attempts[j.id] += 1
            assert j.attempt == self.attempts[j.id]
            if j.id in self.tokens:
                self.old_tokens[j.id] = self.tokens[j.id]
            self.tokens[j.id] = j.lease_token
            assert j.isolated == self.isolated[j.id]
            # Recorded at the claim: every start for a claimer that says nothing; else the
            # at-most-once jobs that go straight into free slots, isolated ones excepted.
            self.started[j.id] = start is None or (
                rank < start and self.delivery[j.id] == "at_most_once" and not j.isolated
            )
            assert j.started == self.started[j.id], (j, start, rank)

    @rule(data=st.data())
    def record_start(self, data: st.DataObject) -> None:
        held = [j for j in self._running() if not self.started[j]]
        if not held:
            return
        job = data.draw(st.sampled_from(held))
        assert self.store.job_start_many([Lease(job, self.tokens[job])]) == []
        self.started[job] = True

    def _running(self) -> list[int]:
        return sorted(i for i, s in self.state.items() if s == "running")

    @rule(data=st.data())
    def complete(self, data: st.DataObject) -> None:
        running = self._running()
        if not running:
            return
        job = data.draw(st.sampled_from(running))
        res = self.store.job_complete_many([Completion(job, self.tokens[job], {"ok": job})])
        assert (res.applied, res.stale) == (1, 0)
        self.state[job] = "completed"

    @rule(data=st.data(), retry=st.booleans())
    def fail(self, data: st.DataObject, retry: bool) -> None:
        running = self._running()
        if not running:
            return
        job = data.draw(st.sampled_from(running))
        retry_in = 0.0 if retry and self.attempts[job] < self.max_attempts[job] else None
        res = self.store.job_fail_many([Failure(job, self.tokens[job], "boom", "tb", retry_in)])
        assert res.applied == 1
        self.state[job] = "retryable" if retry_in is not None else "dead"

    @rule(data=st.data())
    def stale_ack(self, data: st.DataObject) -> None:
        if not self.old_tokens:
            return
        job = data.draw(st.sampled_from(sorted(self.old_tokens)))
        res = self.store.job_complete_many([Completion(job, self.old_tokens[job], None)])
        assert (res.applied, res.stale) == (0, 1)
        self.stale_expected += 1

    @rule()
    def heartbeat(self) -> None:
        running = self._running()
        lost = self.store.job_heartbeat([Lease(j, self.tokens[j]) for j in running], 600.0)
        assert lost == []

    @rule()
    def rescue(self) -> None:
        before = {j: self.store.job_get(j) for j in self._running()}
        self.store.job_rescue_expired(max_crashes=2)
        self.store.job_promote_due()  # leave nothing half-way for the invariant
        for job, rec in before.items():
            assert rec is not None
            if rec.lease_expires_at is not None and rec.lease_expires_at < self.store.now():
                if not self.started[job]:  # held, never started: back uncharged
                    self.state[job] = "available"
                    self.attempts[job] -= 1
                    if self.delivery[job] == "at_least_once":
                        self.isolated[job] = True
                else:
                    self.crashes[job] += 1
                    if self.delivery[job] == "at_most_once" or self.crashes[job] >= 2:
                        self.state[job] = "dead"  # ended: isolated no longer (docs/crashes.md)
                    else:
                        self.state[job] = "available"
                        self.attempts[job] -= 1
                        self.isolated[job] = True
                self.old_tokens[job] = self.tokens.pop(job)

    @rule()
    def promote(self) -> None:
        self.store.job_promote_due()
        for job, s in self.state.items():
            if s == "retryable":
                self.state[job] = "available"

    @rule(data=st.data())
    def retry_by_hand(self, data: st.DataObject) -> None:
        final = sorted(i for i, s in self.state.items() if s in FINAL)
        if not final:
            return
        job = data.draw(st.sampled_from(final))
        assert self.store.job_retry(job)
        self.state[job] = "available"
        self.max_attempts[job] = max(self.max_attempts[job], self.attempts[job] + 1)

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        if not self.state:
            return
        job = data.draw(st.sampled_from(sorted(self.state)))
        ok = self.store.job_cancel(job)
        assert ok == (self.state[job] in ("available", "retryable", "scheduled"))
        if ok:
            self.state[job] = "cancelled"

    @invariant()
    def states_match(self) -> None:
        for job, expected in self.state.items():
            rec = self.store.job_get(job)
            assert rec is not None
            actual = rec.state
            if expected == "retryable" and actual == "available":
                continue  # promoted by the store's own clock: both are right
            assert actual == expected, (job, actual, expected)
            if actual == "running":
                assert rec.lease_token == self.tokens[job]
            assert (rec.crashes, rec.attempt) == (self.crashes[job], self.attempts[job])
        stale = self.store.counters().get("stale_acks", 0) - self.stale_base
        assert stale == self.stale_expected

    @invariant()
    def kept_counts_match_the_rows(self) -> None:
        records = [self.store.job_get(job) for job in self.state]
        rows = Counter(r.state for r in records if r is not None)
        kept = {c.state: c.count for c in self.store.job_counts() if c.queue == self.queue}
        assert kept == dict(rows)
        starts = sum(
            t.value
            for t in self.store.job_totals()
            if t.queue == self.queue and t.event == "started"
        )
        assert starts == sum(r.attempt for r in records if r is not None)


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_store_follows_the_lifecycle_model(engine: str, tmp_path: Path) -> None:
    url, schema = make_url(engine, tmp_path)
    store = open_store(url)
    store.migrate()
    StoreModel.store = store
    try:
        run_state_machine_as_test(
            StoreModel,
            settings=settings(
                max_examples=10,
                stateful_step_count=25,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    finally:
        store.close()
        if schema:
            _drop_schema(schema)
