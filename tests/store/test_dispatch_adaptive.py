"""Adaptive limits: the store applies AIMD to a key from what workers report, within its floor
and ceiling, and claims honour the value in force."""

from __future__ import annotations

from offload.dispatch._limits import CONCURRENCY, RATE, LimitSpec
from offload.store._contract import Store
from offload.store._dispatch import LimitInfo, LimitReport

from ._helpers import claim, insert, new_job


def adaptive(
    start: int = 8, floor: float = 2.0, ceiling: float = 12.0, cooldown: float = 0.0
) -> LimitSpec:
    return LimitSpec(
        concurrency=start,
        adapt_target=CONCURRENCY,
        adapt_min=floor,
        adapt_max=ceiling,
        adapt_step=1.0,
        adapt_factor=0.5,
        adapt_cooldown=cooldown,
    )


def key_info(store: Store, key: str = "api") -> LimitInfo:
    return {x.key: x for x in store.limit_list()}[key]


def test_throttles_cut_the_concurrency_down_to_its_floor(store: Store) -> None:
    insert(store, new_job(limit_key="api", limit=adaptive()))
    seen = []
    for _ in range(4):
        store.limit_report([LimitReport("api", throttled=1)])
        seen.append(key_info(store).concurrency)
    assert seen == [4, 2, 2, 2]
    assert key_info(store).throttles == 4


def test_claims_honour_the_adapted_value(store: Store) -> None:
    insert(store, *[new_job(limit_key="api", limit=adaptive()) for _ in range(10)])
    store.limit_report([LimitReport("api", throttled=1)])
    assert len(claim(store, limit=10)) == 4


def test_successes_raise_it_a_step_per_window_up_to_the_ceiling(store: Store) -> None:
    insert(store, new_job(limit_key="api", limit=adaptive()))
    store.limit_report([LimitReport("api", ok=8)])  # a window of 8 successes at 8: +1
    assert key_info(store).concurrency == 9
    for _ in range(10):
        store.limit_report([LimitReport("api", ok=50)])
    assert key_info(store).concurrency == 12


def test_slow_successes_count_as_throttling(store: Store) -> None:
    insert(store, new_job(limit_key="api", limit=adaptive()))
    store.limit_report([LimitReport("api", ok=3, slow=1)])
    assert key_info(store).concurrency == 4


def test_a_burst_of_throttles_within_the_cooldown_cuts_once(store: Store) -> None:
    insert(store, new_job(limit_key="api", limit=adaptive(cooldown=3600.0)))
    store.limit_report([LimitReport("api", throttled=1)])
    store.limit_report([LimitReport("api", throttled=3), LimitReport("api", throttled=2)])
    assert key_info(store).concurrency == 4
    assert key_info(store).throttles == 6


def test_an_adaptive_rate_moves_the_rate(store: Store) -> None:
    spec = LimitSpec(
        rate=10.0,
        period=1.0,
        adapt_target=RATE,
        adapt_min=1.0,
        adapt_max=20.0,
        adapt_step=1.0,
        adapt_factor=0.5,
        adapt_cooldown=0.0,
    )
    insert(store, new_job(limit_key="api", limit=spec))
    store.limit_report([LimitReport("api", throttled=1)])
    info = key_info(store)
    assert (info.rate, info.concurrency, info.adaptive) == (5.0, None, RATE)


def test_a_key_declared_again_keeps_its_adapted_value_within_new_bounds(store: Store) -> None:
    insert(store, new_job(limit_key="api", limit=adaptive()))
    store.limit_report([LimitReport("api", throttled=1)])  # 8 -> 4
    insert(store, new_job(limit_key="api", limit=adaptive(floor=6.0)))
    assert key_info(store).concurrency == 6


def test_reports_on_a_plain_key_only_count_throttles(store: Store) -> None:
    insert(store, new_job(limit_key="mail", limit=LimitSpec(concurrency=3)))
    store.limit_report([LimitReport("mail", ok=5, throttled=2), LimitReport("nope", ok=1)])
    info = key_info(store, "mail")
    assert (info.concurrency, info.throttles, info.adaptive) == (3, 2, None)
