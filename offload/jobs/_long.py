"""Declaring long jobs (docs/long-jobs.md): iteration jobs, generator functions that take
`cursor=` and yield their new cursor, and the options `checkpoint_every`, `max_run_time` and
`throttle_on`, checked when the job type is declared."""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Literal

from offload._errors import ConfigurationError

LONG_OPTIONS = ("checkpoint_every", "max_run_time", "throttle_on")
PER_CALL_LONG = ("checkpoint_every", "max_run_time")  # stored in the job's meta when given
DEFAULT_CHECKPOINT_EVERY = 5.0

_EXAMPLE = (
    "    @app.job()\n"
    "    def backfill(table: str, cursor: int | None = None):\n"
    "        for row_id in ids_after(table, cursor):\n"
    "            process(row_id)\n"
    "            yield row_id"
)


def iteration_kind(fn: Callable[..., Any]) -> Literal["sync", "async"] | None:
    """'sync' for a generator function, 'async' for an async generator function, else None."""
    if inspect.isasyncgenfunction(fn):
        return "async"
    if inspect.isgeneratorfunction(fn):
        return "sync"
    return None


def long_option(name: str, key: str, value: Any) -> Any:
    """One long-job option, checked: `checkpoint_every` is seconds (a float or a timedelta) or
    an int number of yields; `max_run_time` seconds; `throttle_on` a callable."""
    if key == "throttle_on":
        if value is not None and not callable(value):
            raise ConfigurationError(
                f"job {name!r}: throttle_on must be a callable that returns true while the job "
                f"should wait (e.g. lambda: replica_lag() > 5), got {value!r}"
            )
        return value
    if key == "max_run_time":
        return run_time(value, f"job {name!r}: max_run_time")
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(
            f"job {name!r}: checkpoint_every must be seconds (a float or a timedelta, e.g. 5.0) "
            f"or a number of yields (an int, e.g. 100), got {value!r}"
        )
    if isinstance(value, int):
        if value < 1:
            raise ConfigurationError(f"job {name!r}: checkpoint_every must be at least 1 yield")
        return value
    if not math.isfinite(value) or value <= 0:
        raise ConfigurationError(
            f"job {name!r}: checkpoint_every must be a positive number of seconds, got {value!r}"
        )
    return float(value)


def run_time(value: Any, what: str) -> float | None:
    """A `max_run_time`: positive seconds (a number or a timedelta), or None for no limit."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{what} must be seconds or a timedelta, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"{what} must be a positive number of seconds, got {value!r}")
    return float(value)


def check_iteration(name: str, fn: Callable[..., Any], options: Any) -> None:
    """At declaration: an iteration job takes `cursor` by keyword; the iteration options go
    with iteration jobs only."""
    kind = iteration_kind(fn)
    if kind is None:
        if options.checkpoint_every != DEFAULT_CHECKPOINT_EVERY:
            raise ConfigurationError(
                f"job {name!r}: checkpoint_every applies to iteration jobs (generator "
                f"functions that yield their cursor), e.g.\n{_EXAMPLE}"
            )
        return
    params = inspect.signature(fn).parameters
    cursor = params.get("cursor")
    if cursor is None or cursor.kind not in (cursor.POSITIONAL_OR_KEYWORD, cursor.KEYWORD_ONLY):
        raise ConfigurationError(
            f"job {name!r} is a generator, so an iteration job: it needs a parameter `cursor` "
            f"that offload passes by keyword (None on the first run), e.g.\n{_EXAMPLE}"
        )
    after = list(params)[list(params).index("cursor") + 1 :]
    if any(params[p].kind is params[p].VAR_POSITIONAL for p in after):
        raise ConfigurationError(
            f"job {name!r}: an iteration job cannot take *args after `cursor`; make `cursor` "
            "keyword-only (def job(*args, cursor=None))"
        )


def without_cursor(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A stand-in for an iteration job's function whose signature leaves `cursor` out: what
    producers bind arguments to. Parameters after `cursor` become keyword-only, so that the
    stored arguments never land in the cursor's place when the job is called."""
    sig = inspect.signature(fn)
    params = []
    seen = False
    for p in sig.parameters.values():
        if p.name == "cursor":
            seen = True
            continue
        if seen and p.kind is p.POSITIONAL_OR_KEYWORD:
            p = p.replace(kind=p.KEYWORD_ONLY)
        params.append(p)
    # Keyword-only parameters must follow the positional ones: order them so.
    params.sort(key=lambda p: p.kind)

    @functools.wraps(fn)
    def stand_in(*args: Any, **kwargs: Any) -> Any:  # pragma: no cover - never called
        raise TypeError("the signature of an iteration job, not a callable")

    stand_in.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    annotations = dict(getattr(fn, "__annotations__", {}))
    annotations.pop("cursor", None)
    stand_in.__annotations__ = annotations
    return stand_in
