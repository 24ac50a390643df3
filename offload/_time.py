"""The one range of times offload accepts, and formatting of stored times that cannot fail.

Every time a user names (a job's `delay` or `run_at`, a job's or a rule's expiry) must land,
once offsets and delays are added, between 1970-01-01 and 9999-12-31 UTC: inside it every
engine stores the time alike and every listing can print it. A time already stored outside
it (written by an older version, or straight into the database) is shown clamped to the
range, never as an error.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

EARLIEST = 0.0  # 1970-01-01T00:00:00Z
LATEST = 253402300799.0  # 9999-12-31T23:59:59Z
RANGE_TEXT = "between 1970-01-01 and 9999-12-31 UTC"


def time_problem(ts: float) -> str | None:
    """Why epoch seconds `ts` are not an acceptable time, or None when they are."""
    if not math.isfinite(ts):
        return f"{ts!r} is not a time"
    if ts < EARLIEST or ts > LATEST:
        return f"it falls outside the accepted range: give a time {RANGE_TEXT}"
    return None


def clamped(ts: float) -> datetime:
    """A UTC datetime of epoch seconds, clamped to the accepted range (NaN reads as the start)."""
    if math.isnan(ts):
        ts = EARLIEST
    return datetime.fromtimestamp(min(max(ts, EARLIEST), LATEST), UTC)


def iso(ts: float, timespec: str = "auto") -> str:
    """RFC 3339 UTC (`Z`) text of epoch seconds; a time outside the range shows as its bound."""
    return clamped(ts).isoformat(timespec=timespec).replace("+00:00", "Z")


def readable(ts: float, fmt: str = "%Y-%m-%d %H:%M:%S UTC") -> str:
    """`strftime` of epoch seconds in UTC; a time outside the range shows as its bound."""
    return clamped(ts).strftime(fmt)
