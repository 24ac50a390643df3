"""JSON encoding shared by the engines, the error entry recorded for a failed attempt, and the
one place that decodes what the store holds.

Floats keep a decimal point in the stored text. Python writes a large float with an exponent
(`1e+16`); PostgreSQL's jsonb reads that as an exact number and gives it back as an integer
(`10000000000000000`), which decodes to an `int` that is not even equal to the float for most
values (`1.2345678901234567e+19`). Written positionally with `.0` (`10000000000000000.0`),
the same float comes back from both engines.

A stored job's JSON fields are decoded here and nowhere else: `FIELDS` says which there are,
how messages name them and what shape each must have (arguments and meta are objects, errors
an array of objects). The claim decodes strictly (`decode`, `check`, `text`): a row that fails
is made dead in the claim's own transaction, so it never holds anything else up. Readers decode
leniently (`read`): a field that fails reads as its empty value and is described by an
`Undecodable` (what is wrong, and the start of the stored text), and the rest of the row reads
normally. Nothing stored is ever evaluated, unpickled or imported: it is JSON or it is text.
A new stored field (a checkpoint) is one more entry in `FIELDS`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from offload._errors import PayloadDecodeError
from offload._text import printable
from offload.store._contract import Undecodable

T = TypeVar("T")
log = logging.getLogger("offload.store")
RAW_LIMIT = 1000  # characters of an undecodable field's stored text that readers are given
MESSAGE_RAW = 60  # characters of it quoted in an error message
# Rounds of a claim that made rows dead: each claims again for their places (store engines).
CLAIM_ROUNDS = 10

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
    """Parse JSON text that offload wrote itself (a worker list, a batch); None stays None."""
    if text is None:
        return None
    return json.loads(text)


# A job's error list is bounded, whatever its attempts: each entry's error to MAX_ERROR
# characters (its start) and its traceback to MAX_TRACEBACK (its end, where the failing line is),
# and the list to the entries of the first ERRORS_FIRST and the last ERRORS_LAST attempts, with
# one entry of kind "omitted" between them counting the others (the engines' job_fail keeps
# these numbers): about 90 KB per job at most.
MAX_ERROR = 2_000
MAX_TRACEBACK = 8_000
ERRORS_FIRST = 3
ERRORS_LAST = 5


def bounded_error(error: str) -> str:
    """An attempt's error line, its start kept within MAX_ERROR characters."""
    if len(error) <= MAX_ERROR:
        return error
    return error[:MAX_ERROR] + f"… ({len(error) - MAX_ERROR} more characters left out)"


def bounded_traceback(traceback: str) -> str:
    """A traceback, its end kept within MAX_TRACEBACK characters."""
    if len(traceback) <= MAX_TRACEBACK:
        return traceback
    return f"({len(traceback) - MAX_TRACEBACK} characters left out) …" + traceback[-MAX_TRACEBACK:]


def latest_error(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a listing shows of a job's errors: its latest entry, without its traceback (a
    job's own resource, `offload jobs show` and its page show them all)."""
    if not errors:
        return []
    last = errors[-1]
    if not isinstance(last, dict):
        return [last]
    return [{k: v for k, v in last.items() if k != "traceback"}]


def error_entry(attempt: int, at: float, error: str, traceback: str, kind: str) -> str:
    """One entry of a job's error list, as JSON text, within its bounds. The texts are
    diagnostics: a NUL or a lone surrogate in them is replaced (U+FFFD) rather than refused, on
    every engine."""
    return dumps(
        {
            "attempt": attempt,
            "at": at,
            "error": printable(bounded_error(error)),
            "traceback": printable(bounded_traceback(traceback)),
            "kind": kind,
        }
    )


# --- the stored fields ----------------------------------------------------------------------
def _not_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# Strict JSON: NaN and Infinity (which Python's json accepts) are refused as the store never
# writes them. One decoder, made once: json.loads with options would build one per call.
_DECODER = json.JSONDecoder(parse_constant=_not_constant)


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _object(value: Any) -> str | None:
    return None if isinstance(value, dict) else f"a JSON {json_type(value)}, not an object"


def _anything(value: Any) -> str | None:
    return None


def _entries(value: Any) -> str | None:
    if not isinstance(value, list):
        return f"a JSON {json_type(value)}, not an array"
    for i, entry in enumerate(value):
        if not isinstance(entry, dict):
            return f"an array whose entry {i} is a JSON {json_type(entry)}, not an object"
    return None


@dataclass(frozen=True, slots=True)
class Field:
    """A stored JSON field: how messages name it, the shape it must have (None when right,
    else what is wrong), and the value readers get when it cannot be decoded."""

    label: str
    shape: Callable[[Any], str | None]
    empty: Callable[[], Any]
    nullable: bool = False


FIELDS: dict[str, Field] = {
    "args": Field("arguments are", _object, dict),
    "meta": Field("meta is", _object, dict),
    "errors": Field("the errors list is", _entries, list),
    "result": Field("the result is", _anything, lambda: None, nullable=True),
    "cursor": Field("the cursor is", _anything, lambda: None, nullable=True),
}

# Stored text fields, by how messages name them: SQLite holds any bytes in a TEXT column, and
# sqlite3 refuses to fetch one that is not UTF-8.
TEXT_FIELDS: dict[str, str] = {
    "kind": "the job type name is",
    "queue": "the queue name is",
    "state": "the state is",
    "tenant": "the tenant is",
    "delivery": "the delivery mode is",
    "unique_key": "the unique key is",
    "lease_owner": "the lease owner is",
    "limit_key": "the limit key is",
}


def raw_text(stored: str | bytes, limit: int = RAW_LIMIT) -> str:
    """The start of what the store holds, as text (bytes that are not UTF-8 as `\\xNN`)."""
    if isinstance(stored, bytes):
        return stored[: limit * 4].decode("utf-8", "backslashreplace")[:limit]
    return str(stored)[:limit]


def json_text(value: Any) -> str:
    """A decoded value (PostgreSQL's jsonb) as the JSON text it was stored as."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def _problem(label: str, what: str, stored: Any) -> PayloadDecodeError:
    return PayloadDecodeError(f"{label} {what}; stored text begins {_quoted(stored)}")


def _quoted(stored: Any) -> str:
    """The start of the stored text quoted for a message (one line: control characters
    escaped); bytes that are not UTF-8 as a bytes literal."""
    if isinstance(stored, bytes):
        head = stored[: MESSAGE_RAW * 4]
        try:
            return repr(head.decode("utf-8")[:MESSAGE_RAW])
        except UnicodeDecodeError:
            return repr(head[:MESSAGE_RAW])
    return repr(raw_text(stored, MESSAGE_RAW))


def decode(name: str, stored: str | bytes | None) -> Any:
    """A stored JSON field (text, or the bytes SQLite holds) decoded and checked for its
    shape; `PayloadDecodeError` naming the field, what is wrong and how its text begins."""
    spec = FIELDS[name]
    if stored is None:
        if spec.nullable:
            return None
        raise PayloadDecodeError(f"{spec.label} missing (NULL)")
    if not isinstance(stored, (str, bytes)):  # SQLite keeps any type in any column
        raise _problem(spec.label, f"stored as a {type(stored).__name__}, not text", stored)
    try:
        text = stored.decode("utf-8") if isinstance(stored, bytes) else stored
    except UnicodeDecodeError as exc:
        raise _problem(spec.label, f"not valid UTF-8 ({_utf8(exc)})", stored) from None
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise _problem(spec.label, f"not valid JSON ({exc})", stored) from None
    except (ValueError, RecursionError) as exc:  # NaN, a 5,000-digit number, deep nesting
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise _problem(spec.label, f"not valid JSON ({reason})", stored) from None
    return check(name, value, stored)


def check(name: str, value: Any, stored: Any = None) -> Any:
    """A decoded field (PostgreSQL's jsonb) checked for its shape; `PayloadDecodeError` when
    it is wrong (`stored`, when given, is quoted instead of the value)."""
    spec = FIELDS[name]
    if value is None and spec.nullable:
        return None
    wrong = spec.shape(value)
    if wrong is not None:
        raise _problem(spec.label, wrong, json_text(value) if stored is None else stored)
    return value


def text(name: str, stored: str | bytes | None) -> str | None:
    """A stored text field (bytes as SQLite holds them) as str; `PayloadDecodeError` when it
    is not UTF-8."""
    if stored is None or isinstance(stored, str):
        return stored
    if not isinstance(stored, bytes):  # SQLite keeps any type in any column
        raise _problem(TEXT_FIELDS[name], f"stored as a {type(stored).__name__}, not text", stored)
    try:
        return stored.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _problem(TEXT_FIELDS[name], f"not valid UTF-8 ({_utf8(exc)})", stored) from None


def _utf8(exc: UnicodeDecodeError) -> str:
    bad = exc.object[exc.start : exc.end]
    return f"{exc.reason}: byte {bad[:4].hex(' ')} at offset {exc.start}"


def read(fields: dict[str, Any], *, decoded: bool) -> tuple[dict[str, Any], dict[str, Undecodable]]:
    """Fields of a row for a reader: JSON fields decoded (or, when `decoded`, as the driver
    decoded them, checked for shape) and text fields as str. A field that fails gets its empty
    value (text: its bytes with U+FFFD for what is not UTF-8) and an `Undecodable` entry."""
    values: dict[str, Any] = {}
    bad: dict[str, Undecodable] = {}
    for name, stored in fields.items():
        try:
            if name in TEXT_FIELDS:
                values[name] = text(name, stored)
            elif decoded:
                values[name] = check(name, stored)
            else:
                values[name] = decode(name, stored)
        except PayloadDecodeError as exc:
            if name in TEXT_FIELDS:
                shown = stored.decode("utf-8", "replace") if isinstance(stored, bytes) else stored
                values[name] = str(shown)
            else:
                values[name] = FIELDS[name].empty()
            shown = json_text(stored) if decoded and name not in TEXT_FIELDS else stored
            bad[name] = Undecodable(f"PayloadDecodeError: {exc}", raw_text(shown))
    return values, bad


def report_buried(value: T, buried: list[tuple[int, str, str]]) -> T:
    """Log, once their claim has committed, the jobs it made dead because their stored data
    cannot be decoded (id, job type, error); `value` passes through."""
    for job_id, kind, error in buried:
        log.error(
            "job %s (%s) is dead: %s (its stored data is kept as it was)", job_id, kind, error
        )
    return value
