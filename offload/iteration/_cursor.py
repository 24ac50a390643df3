"""The cursor rules every enumerator shares: what a cursor may be, and the error for one that
does not fit. A cursor is a plain JSON value so the worker can store it between runs."""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

from offload._errors import OffloadError

JSONScalar = int | float | str | bool
"""A key value a keyset cursor holds."""


class CursorError(OffloadError, ValueError):
    """A cursor handed to an enumerator does not fit it (wrong type, wrong shape, or a position
    that is not one of its own): the message names the enumerator and what it expected."""


def describe(value: object) -> str:
    """A short, readable account of a bad value for an error message."""
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} ({type(value).__name__})"


def expect_int(name: str, cursor: object, what: str) -> int:
    """`cursor` as an int (never a bool), or a CursorError naming enumerator `name`."""
    if isinstance(cursor, bool) or not isinstance(cursor, int):
        raise CursorError(f"{name}: the cursor must be {what}, not {describe(cursor)}")
    return cursor


def key_to_json(name: str, column: str, value: Any) -> JSONScalar:
    """A row's key value as a JSON scalar for the cursor. UUIDs, dates and decimals become
    their text form, which the database compares back against the column; anything else
    that is not already a JSON scalar is refused, naming the column."""
    if isinstance(value, int | float | str):
        return value
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    raise CursorError(
        f"{name}: key column {column!r} holds {describe(value)}, which a cursor cannot store "
        "as JSON; order by an integer or text key (or one of UUID, date, time, decimal)"
    )
