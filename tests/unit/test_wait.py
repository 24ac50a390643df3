"""The tests' one wait: `eventually` returns the first truthy value, or fails saying what never
happened by its deadline."""

from __future__ import annotations

import itertools

import pytest

from tests._wait import NeverHappened, eventually


def test_it_returns_the_first_truthy_value() -> None:
    calls = itertools.count()
    assert eventually(lambda: next(calls) >= 3 and "ready", timeout=5, interval=0.001) == "ready"


def test_it_fails_after_the_deadline_naming_what_and_explaining() -> None:
    with pytest.raises(NeverHappened, match=r"(?s)waiting for the door to open.*it is shut"):
        eventually(
            lambda: None,
            timeout=0.05,
            interval=0.01,
            what="the door to open",
            explain=lambda: "it is shut",
        )


def test_a_bad_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="interval > 0"):
        eventually(lambda: True, interval=0)
