"""Moments as people write them in filters: a time ago (`90s`, `15m`, `1h30m`, `2d`, `1w`) or
an ISO 8601 date or date-time (`2026-12-07`, `2026-12-07T09:30`, `2026-12-07T09:30:00+01:00`).

A date-time without a zone is UTC, as offload prints every time. Used by the CLI's and the
dashboard's job filters, which compare them with the store's clock.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

from offload._errors import ConfigurationError

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_AGO = re.compile(r"(?:\d+(?:\.\d+)?[smhdw])+")
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?)?")
_MAX_AGO = 100 * 366 * 86400.0

EXAMPLES = "e.g. 30m, 1h, 2d, 1w ago, or a time such as 2026-12-07T09:30Z"


def parse_when(text: str, now: float, what: str = "time") -> float:
    """Epoch seconds for `text`: `now` minus a duration, or an ISO 8601 date or date-time.
    A ConfigurationError names `what` and the forms it takes."""
    cleaned = text.strip()
    lowered = cleaned.lower().replace(" ", "")
    if _AGO.fullmatch(lowered):
        ago = sum(float(n) * _UNITS[u] for n, u in _PART.findall(lowered))
        if ago > _MAX_AGO:
            raise ConfigurationError(f"{what} {text!r} is more than 100 years ago")
        return now - ago
    if _DATE.fullmatch(cleaned):
        try:
            moment = datetime.fromisoformat(cleaned.upper().replace(" ", "T"))
        except ValueError as exc:
            raise ConfigurationError(f"{what} {text!r} is not a valid time: {exc}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        value = moment.timestamp()
        if math.isfinite(value):
            return value
    raise ConfigurationError(f"{what} {text!r} is neither a duration nor a date-time: {EXAMPLES}")
