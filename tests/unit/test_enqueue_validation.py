"""Bad input at enqueue is refused with a typed error naming the argument, and nothing is stored."""

from __future__ import annotations

import datetime
import math
from decimal import Decimal
from pathlib import Path

import pytest

from offload import (
    ConfigurationError,
    InvalidArgumentsError,
    Offload,
    PayloadTooLargeError,
    UnknownJobError,
)


@pytest.fixture
def app(tmp_path: Path) -> Offload:
    app = Offload(f"sqlite:///{tmp_path / 'jobs.db'}", max_payload_bytes=10_000)

    @app.job()
    def send(user_id: int, payload: object = None, locale: str = "en") -> None: ...

    @app.job()
    def anything(data: object = None, *rest: object, **extra: object) -> None: ...

    return app


def stored(app: Offload) -> int:
    return sum(c.count for c in app.store.job_counts())


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (-math.inf, "-inf"),
        (2**63, "64 bits"),
        (-(2**63) - 1, "64 bits"),
        ({1: "x"}, "non-string key"),
        ({"a": {1, 2}}, "set"),
        (b"bytes", "bytes"),
        (Decimal("1.5"), "Decimal"),
        (datetime.datetime(2026, 1, 1), "datetime"),
        (object(), "object"),
    ],
)
def test_non_json_values_are_refused_naming_the_argument(
    app: Offload, value: object, fragment: str
) -> None:
    with pytest.raises(InvalidArgumentsError) as err:
        app.jobs["send"].enqueue(1, payload=value)
    assert "'payload'" in str(err.value)
    assert fragment in str(err.value)
    assert err.value.argument == "argument 'payload' of send()"
    assert stored(app) == 0


def test_deep_nesting_is_refused(app: Offload) -> None:
    deep: object = 1
    for _ in range(100):
        deep = [deep]
    with pytest.raises(InvalidArgumentsError, match="nests deeper"):
        app.jobs["send"].enqueue(1, payload=deep)
    assert stored(app) == 0


def test_oversized_payload_is_refused(app: Offload) -> None:
    with pytest.raises(PayloadTooLargeError, match="over the limit") as err:
        app.jobs["send"].enqueue(1, payload="x" * 20_000)
    assert err.value.argument == "payload"
    assert stored(app) == 0


def test_missing_and_unknown_arguments(app: Offload) -> None:
    with pytest.raises(InvalidArgumentsError, match="user_id"):
        app.jobs["send"].enqueue()
    with pytest.raises(InvalidArgumentsError, match="colour"):
        app.jobs["send"].enqueue(1, colour="red")
    with pytest.raises(InvalidArgumentsError, match="positional"):
        app.jobs["send"].enqueue(1, 2, 3, 4)
    assert stored(app) == 0


def test_annotations_are_checked(app: Offload) -> None:
    with pytest.raises(InvalidArgumentsError, match="should be int, got str"):
        app.jobs["send"].enqueue("42")
    with pytest.raises(InvalidArgumentsError, match="should be int, got bool"):
        app.jobs["send"].enqueue(True)
    with pytest.raises(InvalidArgumentsError, match="locale"):
        app.jobs["send"].enqueue(1, locale=5)
    assert stored(app) == 0


def test_unknown_job_name(app: Offload) -> None:
    with pytest.raises(UnknownJobError, match="'nope'.*declared: anything, send"):
        app.enqueue("nope", 1)
    assert stored(app) == 0


def test_bad_options_are_refused(app: Offload) -> None:
    with pytest.raises(ConfigurationError, match="priority"):
        app.jobs["send"].options(priority="high").enqueue(1)
    with pytest.raises(ConfigurationError, match="delivery"):
        app.jobs["send"].options(delivery="exactly_once").enqueue(1)
    with pytest.raises(ConfigurationError, match="unknown option 'dealy'"):
        app.jobs["send"].options(dealy=5)
    with pytest.raises(ConfigurationError, match="delay"):
        app.jobs["send"].options(delay=-1).enqueue(1)
    with pytest.raises(ConfigurationError, match="timezone-aware"):
        app.jobs["send"].options(at=datetime.datetime(2030, 1, 1)).enqueue(1)
    assert stored(app) == 0


def test_good_values_round_trip(app: Offload) -> None:
    payload = {"name": "Zoë ✓", "n": [1, 2.5, None, True], "t": (1, 2), "big": 2**63 - 1}
    job = app.jobs["send"].enqueue(7, payload=payload, locale="fr")
    assert job.args == {
        "user_id": 7,
        "payload": {"name": "Zoë ✓", "n": [1, 2.5, None, True], "t": [1, 2], "big": 2**63 - 1},
        "locale": "fr",
    }


def test_var_args_are_stored_by_name(app: Offload) -> None:
    job = app.jobs["anything"].enqueue(1, 2, 3, key="v")
    assert job.args == {"data": 1, "rest": [2, 3], "extra": {"key": "v"}}
    with pytest.raises(InvalidArgumentsError, match="'rest'"):
        app.jobs["anything"].enqueue(1, float("nan"))
