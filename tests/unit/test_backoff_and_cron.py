"""Backoff arithmetic and cron tick arithmetic (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from offload import Exponential
from offload._backoff import as_backoff
from offload.app._cron import next_tick, previous_tick


@given(st.integers(min_value=1, max_value=200))
def test_exponential_stays_within_jitter_and_cap(attempt: int) -> None:
    b = Exponential(base=1, factor=2, maximum=300, jitter=0.25)
    expected = min(300, 2 ** (attempt - 1))
    assert expected * 0.75 <= b(attempt) <= expected * 1.25


def test_constant_and_function_backoff() -> None:
    assert as_backoff(5)(3) == 5.0
    assert as_backoff(lambda a: a * 10)(3) == 30


def test_cron_ticks() -> None:
    at = datetime(2026, 3, 8, 1, 59, 30, tzinfo=UTC).timestamp()
    assert previous_tick("*/5 * * * *", at) == datetime(2026, 3, 8, 1, 55, tzinfo=UTC).timestamp()
    assert next_tick("*/5 * * * *", at) == datetime(2026, 3, 8, 2, 0, tzinfo=UTC).timestamp()
    exact = datetime(2026, 3, 8, 2, 0, tzinfo=UTC).timestamp()
    assert previous_tick("*/5 * * * *", exact) == exact
    assert previous_tick("* * * * * */2", 1000.0) == 1000.0
    assert previous_tick("* * * * * */2", 1001.5) == 1000.0
