"""Values PostgreSQL cannot store as given: NUL characters in text and in jsonb strings.

SQLite keeps them, so a job's arguments with one are refused at enqueue with a clear error, and
a job's error text or result has them replaced (U+FFFD) rather than failing its whole batch of
acknowledgements.
"""

from __future__ import annotations

from typing import Any

from offload._errors import InvalidArgumentsError
from offload.store._codec import dumps

_NUL = "\x00"
_ESCAPED_NUL = "\\u0000"  # how JSON text spells it


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return _NUL in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


def _replace_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace(_NUL, "\ufffd")
    if isinstance(value, dict):
        return {_replace_nul(k): _replace_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_replace_nul(v) for v in value]
    return value


def json_text(value: Any, what: str, text: str | None = None) -> str:
    """`value` as JSON text for a jsonb column (`text` when it is encoded already);
    `InvalidArgumentsError` if it holds a NUL."""
    if text is None:
        text = dumps(value)
    if _ESCAPED_NUL in text and _has_nul(value):
        raise InvalidArgumentsError(
            f"the job's {what} contain a NUL character (\\x00), which PostgreSQL cannot store; "
            "remove it, or pass binary data encoded (e.g. base64)",
            argument=what,
        )
    return text


def lenient_json_text(value: Any) -> str:
    """`value` as JSON text for a jsonb column, any NUL replaced by U+FFFD."""
    text = dumps(value)
    if _ESCAPED_NUL in text and _has_nul(value):
        return dumps(_replace_nul(value))
    return text


def plain_text(value: str) -> str:
    """Text for a text column, any NUL replaced by U+FFFD."""
    return value.replace(_NUL, "\ufffd") if _NUL in value else value
