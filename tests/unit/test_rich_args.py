"""Arguments of richer types than JSON's (docs/typing.md): checked at enqueue, stored as JSON,
converted back before the call (in `drain` and `inline` here, as in a worker), with errors
that say what is wrong; and taken as plain JSON, as before, when pydantic is not installed."""

from __future__ import annotations

import enum
import sys
import typing
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pydantic
import pytest
from typing_extensions import TypedDict

from offload import ConfigurationError, InvalidArgumentsError, Offload
from offload.jobs import _rich
from offload.testing import drain, inline


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Size(enum.IntEnum):
    S = 1
    L = 3


@dataclass
class Point:
    x: int
    at: datetime


class Address(TypedDict):
    city: str
    zip: int


class Old(typing.TypedDict):  # pydantic needs typing_extensions' TypedDict before Python 3.12
    a: int


class Customer(pydantic.BaseModel):
    name: str
    since: date


@pytest.fixture
def app(tmp_path: Path) -> Offload:
    return Offload(f"sqlite:///{tmp_path}/jobs.db")


CASES: list[tuple[Any, Any, Any]] = [
    # (annotation, value given at enqueue, its stored JSON)
    (datetime, datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC), "2030-01-02T03:04:05Z"),
    (
        datetime,
        datetime(2030, 1, 2, 3, 4, tzinfo=timezone(timedelta(hours=2))),
        "2030-01-02T03:04:00+02:00",
    ),
    (datetime, datetime(2030, 1, 2, 3, 4), "2030-01-02T03:04:00"),
    (date, date(2030, 1, 2), "2030-01-02"),
    (time, time(9, 30), "09:30:00"),
    (timedelta, timedelta(hours=1, seconds=1), "PT1H1S"),
    (
        UUID,
        UUID("12345678-1234-5678-1234-567812345678"),
        "12345678-1234-5678-1234-567812345678",
    ),
    (Decimal, Decimal("1.10"), "1.10"),
    (Color, Color.BLUE, "blue"),
    (Size, Size.L, 3),
    (Point, Point(1, datetime(2030, 1, 1, tzinfo=UTC)), {"x": 1, "at": "2030-01-01T00:00:00Z"}),
    (Address, {"city": "Oslo", "zip": 150}, {"city": "Oslo", "zip": 150}),
    (
        Customer,
        Customer(name="Ada", since=date(2020, 5, 1)),
        {"name": "Ada", "since": "2020-05-01"},
    ),
    (list[date], [date(2030, 1, 1), date(2030, 1, 2)], ["2030-01-01", "2030-01-02"]),
    (dict[str, Decimal], {"a": Decimal("0.5")}, {"a": "0.5"}),
    (date | None, None, None),
]


@pytest.mark.parametrize(("hint", "value", "stored"), CASES, ids=[repr(c[1])[:30] for c in CASES])
def test_each_type_round_trips(app: Offload, hint: Any, value: Any, stored: Any) -> None:
    got: list[Any] = []

    def take(value: Any) -> None:
        got.append(value)

    take.__annotations__ = {"value": hint, "return": None}
    job_type = app.job(name="take")(take)
    job = job_type.enqueue(value)
    assert job.args == {"value": stored}
    assert drain(app).completed == 1
    assert got == [value]
    assert type(got[0]) is type(value)


def test_json_forms_are_accepted_as_over_http(app: Offload) -> None:
    """A producer that sends JSON (HTTP, the CLI) is checked with the same model, by name."""
    got: list[Any] = []

    @app.job
    def plan(day: date, point: Point, color: Color) -> None:
        got.append((day, point, color))

    prepared = plan.options().prepare_named(
        {"day": "2030-01-02", "point": {"x": "3", "at": "2030-01-01T00:00:00Z"}, "color": "red"}
    )
    assert prepared.new.args == {
        "day": "2030-01-02",
        "point": {"x": 3, "at": "2030-01-01T00:00:00Z"},
        "color": "red",
    }
    app.enqueue_many([prepared])
    drain(app)
    assert got == [(date(2030, 1, 2), Point(3, datetime(2030, 1, 1, tzinfo=UTC)), Color.RED)]


def test_inline_runs_the_job_with_converted_arguments(app: Offload) -> None:
    got: list[Any] = []

    @app.job
    def remind(when: datetime, *days: date, **extra: Decimal) -> None:
        got.append((when, days, extra))

    with inline(app):
        remind.enqueue(datetime(2030, 1, 1), date(2030, 1, 2), fee=Decimal("2.5"))
    assert got == [(datetime(2030, 1, 1), (date(2030, 1, 2),), {"fee": Decimal("2.5")})]


def test_wrong_values_are_refused_at_enqueue_with_what_is_wrong(app: Offload) -> None:
    @app.job
    def book(when: datetime, color: Color, point: Point) -> None: ...

    good = {"when": datetime(2030, 1, 1), "color": Color.RED, "point": Point(1, datetime.now())}
    with pytest.raises(InvalidArgumentsError) as bad:
        book.enqueue(**{**good, "when": "not a date"})
    assert str(bad.value) == (
        "argument 'when' of book() should be datetime, got str 'not a date': "
        "Input should be a valid datetime or date, invalid character in year"
    )
    assert (bad.value.argument, bad.value.path) == ("when", "args.when")
    with pytest.raises(InvalidArgumentsError, match=r"'color' of book\(\) should be Color, got "):
        book.enqueue(**{**good, "color": "green"})
    with pytest.raises(InvalidArgumentsError) as bad:
        book.enqueue(**{**good, "point": {"x": "many", "at": "2030-01-01"}})
    assert str(bad.value).startswith("argument 'point' of book() should be Point, got dict ")
    assert str(bad.value).endswith("(at x)")
    assert bad.value.path == "args.point.x"


def test_a_stored_value_that_does_not_convert_fails_the_attempt(
    app: Offload, tmp_path: Path
) -> None:
    calls: list[Any] = []

    @app.job(max_attempts=1)
    def later(day: date) -> None:
        calls.append(day)

    other = Offload(f"sqlite:///{tmp_path}/jobs.db")  # a producer of another version

    @other.job(name="later")
    def later_v0(day: str) -> None: ...

    job = later_v0.enqueue("someday")
    assert drain(app).retried == 1  # as any job that does not fit this worker's version
    assert calls == []
    assert job.refresh().errors[-1]["error"] == (
        "InvalidArgumentsError: the stored argument 'day' of later() is not a date: "
        "Input should be a valid date or datetime, input is too short"
    )
    other.close()


def test_without_pydantic_a_rich_parameter_takes_plain_json_as_before(
    app: Offload, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_rich, "pydantic_installed", lambda: False)
    got: list[object] = []

    @app.job
    def remind(when: datetime) -> None:
        got.append(when)

    job = remind.enqueue("2026-12-07T10:00:00+00:00")
    assert job.args == {"when": "2026-12-07T10:00:00+00:00"}
    drain(app)
    assert got == ["2026-12-07T10:00:00+00:00"]  # not converted: the function gets the JSON

    @app.job
    def plain(user_id: int, tags: list[str]) -> None: ...  # today's types need nothing

    assert plain.enqueue(1, ["a"]).args == {"user_id": 1, "tags": ["a"]}


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="pydantic takes it from Python 3.12")
def test_an_annotation_pydantic_cannot_convert_is_refused_at_declaration(app: Offload) -> None:
    with pytest.raises(ConfigurationError, match="'o' is annotated Old, which pydantic cannot"):

        @app.job
        def use(o: Old) -> None: ...


def test_import_offload_does_not_import_pydantic() -> None:
    import subprocess

    code = "import sys, offload; print('pydantic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_encrypted_and_upgraded_arguments_are_converted_after_both(
    app: Offload, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker opens sealed arguments, then upgrades them, then converts them: the JSON form
    is what is sealed and what upgraders read."""
    from offload.jobs._keys import new_key_entry

    monkeypatch.setenv("OFFLOAD_KEYS", new_key_entry("k1"))
    monkeypatch.delenv("OFFLOAD_KEYS_FILE", raising=False)
    got: list[Any] = []

    def to_v2(args: dict[str, Any]) -> dict[str, Any]:
        return {"point": {"x": 1, "at": args["at"]}, "at": args["at"]}

    @app.job(encrypt=True, version=2, upgrade={2: to_v2})
    def mark(point: Point, at: datetime) -> None:
        got.append((point, at))

    old = Offload(app.config.url)  # a producer of version 1

    @old.job(name="mark", encrypt=True)
    def mark_v1(at: datetime) -> None: ...

    when = datetime(2030, 1, 1, tzinfo=UTC)
    stored = old.store.job_get(mark_v1.enqueue(when).id)
    assert stored is not None and str(stored.args["at"]).startswith("enc:")
    mark.enqueue(Point(2, when), when)
    assert drain(app).completed == 2
    assert got == [(Point(1, when), when), (Point(2, when), when)]
    old.close()
