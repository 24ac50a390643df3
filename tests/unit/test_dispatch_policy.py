"""The dispatch policy as pure logic (offload/dispatch/) and its job options: no store I/O."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from offload import (
    Adaptive,
    ConfigurationError,
    InvalidArgumentsError,
    Limit,
    Offload,
    Throttled,
)
from offload.dispatch import _ordering as ordering
from offload.dispatch._adaptive import Signal, adapt
from offload.dispatch._limits import Candidate, KeyRow, key_state, plan
from offload.store._contract import ClaimedJob
from offload.worker._ack import limit_reports, to_acks
from offload.worker._executor import Executor, Outcome


@pytest.fixture
def app(tmp_path: Path) -> Offload:
    return Offload(f"sqlite:///{tmp_path / 'jobs.db'}")


# --- ordering -----------------------------------------------------------------------------
def arrival(
    kind: str = "k", tenant: str | None = None, stride: float = 1.0, **kw: float
) -> ordering.Arrival:
    return ordering.Arrival("q", 0, kind, tenant, stride, kw.get("slo"), kw.get("due", 0.0))


def test_a_flow_starts_at_the_later_of_the_clock_and_its_finish() -> None:
    assert ordering.reserve(10.0, None, 3.0) == (10.0, 13.0)
    assert ordering.reserve(10.0, 25.0, 3.0) == (25.0, 28.0)
    assert ordering.reserve(10.0, 4.0, 3.0) == (10.0, 13.0)


def test_jobs_of_a_flow_take_consecutive_starts_in_due_order() -> None:
    batch = [arrival(due=5.0), arrival(due=1.0), arrival("other", slo=60.0), arrival(due=1.0)]
    bases = {a.flow: 100.0 for a in batch}
    tags = ordering.tag(batch, bases)
    assert [t.start for t in tags] == [102.0, 100.0, 100.0, 101.0]
    assert tags[2].order_key == 160.0
    assert ordering.demand(batch)[("q", 0, "k", "")] == 3.0


def test_stride_is_cost_over_weights() -> None:
    assert ordering.stride(1.0, 3.0) == pytest.approx(1 / 3)
    assert ordering.stride(2.0, 0.5, 2.0) == 2.0
    with pytest.raises(ValueError):
        ordering.stride(1.0, float("inf"))


def test_lane_clocks_only_move_forward() -> None:
    moved = ordering.advance({("q", 0): 10.0}, [(("q", 0), 7.0), (("q", 0), 12.0), (("r", 1), 3.0)])
    assert moved == {("q", 0): 12.0, ("r", 1): 3.0}


# --- limits -------------------------------------------------------------------------------
def row(key: str, **kw: Any) -> KeyRow:
    fields: dict[str, Any] = {
        "concurrency": None,
        "rate": None,
        "period": 1.0,
        "burst": None,
        "fifo": False,
        "adapt_target": None,
        "adapt_value": None,
        "tokens": None,
        "refilled_at": None,
    }
    fields.update(kw)
    return KeyRow(key, **fields)  # type: ignore[arg-type]


def test_a_key_allows_the_least_of_its_concurrency_tokens_and_fifo_head() -> None:
    assert key_state(row("a", concurrency=3, running=1), 0.0).allowance == 2
    assert key_state(row("b", rate=5.0, tokens=1.5, refilled_at=0.0), 0.1).allowance == 2
    assert key_state(row("c", rate=5.0, tokens=0.0, refilled_at=0.0), 100.0).allowance == 5
    fifo = row("d", concurrency=2, fifo=True, head=frozenset({7}))
    assert key_state(fifo, 0.0).allowance == 1
    adapted = row("e", concurrency=10, adapt_target="concurrency", adapt_value=3.7)
    assert key_state(adapted, 0.0).allowance == 3


def test_plan_skips_saturated_keys_and_excludes_them_from_later_pages() -> None:
    jobs = [Candidate(i, "q", 0, float(i), "hot" if i < 6 else None) for i in range(1, 9)]
    asked: list[frozenset[str]] = []

    def fetch(
        queue: str, after: Candidate | None, excluded: frozenset[str], n: int
    ) -> Sequence[Candidate]:
        asked.append(excluded)
        start = 0 if after is None else after.id
        return [c for c in jobs if c.id > start and c.limit_key not in excluded][:n]

    def load(keys: Sequence[str]) -> dict[str, KeyRow]:
        return {"hot": row("hot", concurrency=1)}

    first = {"q": jobs[:2]}  # a first page of `limit` rows, as the fast path read it
    chosen = plan(["q"], 2, fetch, load, 0.0, first=first).chosen
    assert [c.id for c in chosen] == [1, 6]
    assert asked == [frozenset({"hot"})]


def test_a_key_the_claim_could_not_read_counts_as_saturated() -> None:
    jobs = [Candidate(1, "q", 0, 0.0, "locked"), Candidate(2, "q", 0, 1.0, None)]
    out = plan(["q"], 5, lambda q, a, e, n: jobs if a is None else [], lambda k: {}, 0.0)
    assert [c.id for c in out.chosen] == [2]
    assert out.saturated == {"locked"}


def test_limit_declarations_are_checked(app: Offload) -> None:
    with pytest.raises(ConfigurationError, match="needs a concurrency or a rate"):
        app.job(limit=Limit("x"))(lambda: None)
    with pytest.raises(ConfigurationError, match="give a concurrency too"):
        app.job(name="f", limit=Limit(rate=1, fifo=True))(lambda: None)
    with pytest.raises(ConfigurationError, match="names 'shop'"):

        @app.job(limit=Limit("webhooks:{shop}", concurrency=1))
        def hook(shop_id: int) -> None: ...

    with pytest.raises(ConfigurationError, match="offload.Limit"):
        app.job(name="g", limit=3)(lambda: None)
    with pytest.raises(ConfigurationError, match="decrease"):
        app.job(name="h", limit=Limit(concurrency=2, adaptive=Adaptive(decrease=2)))(lambda: None)


def test_a_key_is_formatted_from_arguments_and_defaults(app: Offload) -> None:
    @app.job(limit=Limit("webhooks:{shop_id}:{region}", concurrency=1))
    def hook(shop_id: int, region: str = "eu") -> None: ...

    new = hook.prepare(42).new
    assert new.limit_key == "webhooks:42:eu"
    assert new.limit is not None and new.limit.concurrency == 1
    assert hook.prepare(1, region="us").new.limit_key == "webhooks:1:us"


def test_a_missing_argument_of_a_key_is_named(app: Offload) -> None:
    @app.job(limit=Limit("user:{user_id}", concurrency=1))
    def sync(**kwargs: Any) -> None: ...

    with pytest.raises(InvalidArgumentsError, match="needs the argument 'user_id'"):
        sync.prepare(other=1)


def test_a_limit_without_key_is_global_to_its_type(app: Offload) -> None:
    @app.job(limit=Limit(rate=10, per=timedelta(minutes=1)))
    def export() -> None: ...

    new = export.prepare().new
    assert new.limit_key == "export"
    assert new.limit is not None and (new.limit.rate, new.limit.period) == (10.0, 60.0)


def test_slo_weight_cost_and_tenants_become_the_jobs_fields(app: Offload) -> None:
    @app.job(slo=timedelta(minutes=5), weight=2, cost=3, tenant="{customer}")
    def sync(customer: str) -> None: ...

    new = sync.prepare("acme").new
    assert (new.slo, new.stride, new.tenant) == (300.0, 1.5, "acme")
    weighted = sync.options(tenant_weight={"acme": 3.0}).prepare("acme").new
    assert weighted.stride == 0.5
    other = sync.options(tenant="fixed", slo=None).prepare("acme").new
    assert (other.tenant, other.slo) == ("fixed", None)
    with pytest.raises(ConfigurationError, match="weight"):
        sync.options(weight=0).prepare("x")


# --- adaptive -----------------------------------------------------------------------------
def aimd(value: float, signal: Signal, decreased_at: float | None = None) -> tuple[float, Any]:
    return adapt(
        value,
        floor=1.0,
        ceiling=10.0,
        increase=1.0,
        decrease=0.5,
        cooldown=5.0,
        decreased_at=decreased_at,
        signal=signal,
        now=100.0,
    )


def test_additive_increase_multiplicative_decrease() -> None:
    assert aimd(4.0, Signal(ok=4)) == (5.0, None)
    assert aimd(9.5, Signal(ok=100)) == (10.0, None)
    assert aimd(4.0, Signal(ok=3, throttled=1)) == (2.0, 100.0)
    assert aimd(1.5, Signal(slow=1)) == (1.0, 100.0)
    assert aimd(4.0, Signal(throttled=1), decreased_at=97.0) == (4.0, 97.0)  # cooling down


def test_throttling_errors_by_type_or_name() -> None:
    class RateLimited(Exception): ...

    spec = Adaptive(on=(TimeoutError, "RateLimited"))
    assert spec.throttles(Throttled())
    assert spec.throttles(TimeoutError())
    assert spec.throttles(RateLimited())
    assert not spec.throttles(ValueError())
    assert Throttled(retry_after=timedelta(seconds=3)).retry_after == 3.0
    with pytest.raises(ValueError):
        Throttled(retry_after=-1)


def test_the_worker_reports_throttles_and_retries_after_retry_after(app: Offload) -> None:
    class Busy(Exception): ...

    @app.job(limit=Limit("api", concurrency=4, adaptive=Adaptive(on=(Busy,), latency=2.0)))
    def call() -> None: ...

    def claimed(i: int) -> ClaimedJob:
        return ClaimedJob(
            i, "call", "default", {}, {}, 1, 5, "at_least_once", None, 1, 60.0, limit_key="api"
        )

    executor = Executor(app, 1, lambda o: None)
    busy = executor._failure(claimed(1), Busy("429"))
    told = executor._failure(claimed(2), Throttled(retry_after=7))
    plain = executor._failure(claimed(3), ValueError("bug"))
    assert (busy.throttled, told.throttled, plain.throttled) == (True, True, False)
    outcomes = [
        busy,
        told,
        plain,
        Outcome(claimed(4), True, duration=0.1),
        Outcome(claimed(5), True, duration=3.0),
    ]
    _, failed = to_acks(app, outcomes)
    assert failed[1].retry_in == 7.0
    (report,) = limit_reports(app, outcomes)
    assert (report.key, report.ok, report.throttled, report.slow) == ("api", 1, 2, 1)
