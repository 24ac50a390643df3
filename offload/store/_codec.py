"""JSON encoding shared by the engines, and the error entry recorded for a failed attempt.

Floats keep a decimal point in the stored text. Python writes a large float with an exponent
(`1e+16`); PostgreSQL's jsonb reads that as an exact number and gives it back as an integer
(`10000000000000000`), which decodes to an `int` that is not even equal to the float for most
values (`1.2345678901234567e+19`). Written positionally with `.0` (`10000000000000000.0`),
the same float comes back from both engines.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from offload._text import printable

_EXPONENT = "e+"


def dumps(value: Any) -> str:
    """Compact JSON text; payloads were validated at enqueue, so this does not fail there."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    if _EXPONENT in text:  # a float with a positive exponent, or just those letters in a string
        return exact_floats(value)
    return text


def exact_floats(value: Any) -> str:
    """`dumps(value)` with every float of a positive exponent written positionally (the slow
    path of `dumps`, for values whose JSON holds an exponent)."""
    if isinstance(value, float):
        text = repr(value)
        if _EXPONENT in text:
            return format(Decimal(text), "f") + ".0"
        return text
    if isinstance(value, dict):
        items = (f"{_key(k)}:{exact_floats(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(exact_floats(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _key(key: Any) -> str:
    """An object key as `json.dumps` writes it (non-string keys become strings)."""
    if isinstance(key, str):
        return json.dumps(key, ensure_ascii=False)
    return json.dumps({key: 0}, ensure_ascii=False, separators=(",", ":"))[1:-3]


def loads(text: str | bytes | None) -> Any:
    """Parse JSON text; None stays None."""
    if text is None:
        return None
    return json.loads(text)


def error_entry(attempt: int, at: float, error: str, traceback: str, kind: str) -> str:
    """One entry of a job's error list, as JSON text. The texts are diagnostics: a NUL or a
    lone surrogate in them is replaced (U+FFFD) rather than refused, on every engine."""
    return dumps(
        {
            "attempt": attempt,
            "at": at,
            "error": printable(error),
            "traceback": printable(traceback),
            "kind": kind,
        }
    )
