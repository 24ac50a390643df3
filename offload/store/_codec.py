"""JSON encoding shared by the engines, and the error entry recorded for a failed attempt."""

from __future__ import annotations

import json
from typing import Any


def dumps(value: Any) -> str:
    """Compact JSON text; payloads were validated at enqueue, so this does not fail there."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def loads(text: str | bytes | None) -> Any:
    """Parse JSON text; None stays None."""
    if text is None:
        return None
    return json.loads(text)


def error_entry(attempt: int, at: float, error: str, traceback: str, kind: str) -> str:
    """One entry of a job's error list, as JSON text."""
    return dumps(
        {"attempt": attempt, "at": at, "error": error, "traceback": traceback, "kind": kind}
    )
