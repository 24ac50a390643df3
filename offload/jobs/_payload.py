"""Checks that a job's data is plain JSON that every engine stores alike, naming the place at
fault.

Arguments (and meta, and results) are checked when a job is enqueued, so a bad value fails in
the producer, where the programmer can see it, and never reaches a worker or the store. Only
what JSON holds losslessly on both engines is accepted: no NaN or infinity, integers within 64
bits, string keys, bounded depth and size, and no string (nor key) with a NUL character or a
lone surrogate (offload/_text.py). A refusal names its path the way rules name fields:
`args.items[2].name`.
"""

from __future__ import annotations

import json
import math
from typing import Any

from offload._errors import InvalidArgumentsError, InvalidTextError, PayloadTooLargeError
from offload._text import NUL, advice, first_surrogate, step, text_problem
from offload.store._codec import exact_floats

MAX_INT = 2**63 - 1
MIN_INT = -(2**63)
DEFAULT_MAX_DEPTH = 32
DEFAULT_MAX_BYTES = 1_000_000
# The compact JSON text that the store keeps (the same as offload/store/_codec.py's `dumps`),
# from one encoder made once (`json.dumps` builds one at every call). Checked arguments hold no
# cycles (their depth is bounded), so the C encoder runs without its cycle check.
_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_c_encoder = getattr(json.encoder, "c_make_encoder", None)
_chunks = (
    None
    if _c_encoder is None
    else _c_encoder(
        None, _encoder.default, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )
)
# How the encoder writes a NUL (it escapes control characters even with ensure_ascii=False);
# JSON text without it holds no NUL, and JSON text that is ASCII holds no lone surrogate.
_ESCAPED_NUL = "\\u0000"
_EXPONENT = "e+"


def _encode(value: Any) -> str:
    if _chunks is None:  # pragma: no cover - Pythons without the C accelerator
        text = _encoder.encode(value)
    else:
        text = "".join(_chunks(value, 0))
    if _EXPONENT in text:  # a large float: written so that PostgreSQL keeps it a float
        return exact_floats(value)
    return text


def arg_path(name: str) -> str:
    """The path of one argument: `args.user_id`, `args["odd name"]`."""
    return step("args", name)


def check_json(
    value: Any, where: str, max_depth: int = DEFAULT_MAX_DEPTH, *, path: str | None = None
) -> Any:
    """Return `value` with tuples as lists, or raise naming `where` (e.g. "argument 'x' of f()")
    and the `path` of the place at fault (e.g. "args.x[2].name"; default: `where`)."""
    return _check(value, where, where if path is None else path, 0, max_depth)


def _check(value: Any, root: str, path: str, depth: int, max_depth: int) -> Any:
    if depth > max_depth:
        raise InvalidArgumentsError(
            f"{root} nests deeper than {max_depth} levels at {path}; flatten it or pass an id",
            root,
            path,
        )
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if NUL in value or (not value.isascii() and first_surrogate(value) is not None):
            raise _bad_text(root, path, value)
        return value
    if isinstance(value, int):
        if not MIN_INT <= value <= MAX_INT:
            raise InvalidArgumentsError(
                f"{root} holds an integer outside 64 bits at {path}; pass it as a string",
                root,
                path,
            )
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgumentsError(
                f"{root} holds {value!r} at {path}, which JSON cannot represent", root, path
            )
        return value
    if isinstance(value, (list, tuple)):
        return [_check(v, root, f"{path}[{i}]", depth + 1, max_depth) for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise InvalidArgumentsError(
                    f"{root} has a non-string key {k!r} at {path}; JSON object keys are strings",
                    root,
                    path,
                )
            if NUL in k or (not k.isascii() and first_surrogate(k) is not None):
                raise _bad_text(root, path, k, key=True)
            out[k] = _check(v, root, step(path, k), depth + 1, max_depth)
        return out
    raise InvalidArgumentsError(
        f"{root} is a {type(value).__name__} at {path}, which is not JSON; pass plain data "
        "(str, int, float, bool, None, list, dict) such as an id or an ISO date string",
        root,
        path,
    )


def _bad_text(root: str, path: str, text: str, key: bool = False) -> InvalidTextError:
    problem = text_problem(text) or "an unstorable character"
    if key:
        shown = repr(text) if len(text) <= 40 else repr(text[:37]) + "..."
        where = f"in the key {shown} of {path}"
    else:
        where = f"at {path}"
    return InvalidTextError(f"{root} holds {problem} {where}: {advice(problem)}", root, path)


def check_text(value: Any, root: str, path: str) -> None:
    """Raise `InvalidTextError` at the first string (value or key) of `value` that holds a NUL
    or a lone surrogate; nothing else is checked (the slow path of `args_json`)."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if text_problem(item) is not None:
                raise _bad_text(root, where, item)
        elif isinstance(item, dict):
            pending = []
            for k, v in item.items():
                if isinstance(k, str) and text_problem(k) is not None:
                    raise _bad_text(root, where, k, key=True)
                pending.append((v, step(where, k) if isinstance(k, str) else where))
            stack.extend(reversed(pending))
        elif isinstance(item, (list, tuple)):
            stack.extend(reversed([(v, f"{where}[{i}]") for i, v in enumerate(item)]))


def args_json(args: dict[str, Any], kind: str, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """Checked arguments as the JSON text the store keeps; refused over `max_bytes`, or when a
    string holds a NUL or a lone surrogate (the check runs only when the text shows one)."""
    text = _encode(args)
    if text.isascii():  # O(1): the common case needs no encoding to know its size
        size = len(text)
    else:
        try:
            size = len(text.encode())
        except UnicodeEncodeError:  # a lone surrogate somewhere: find it
            size = -1
    if size < 0 or _ESCAPED_NUL in text:
        for name, value in args.items():
            if text_problem(name) is not None:  # a name given to **kwargs
                raise _bad_text(f"arguments of {kind}()", "args", name, key=True)
            check_text(value, f"argument {name!r} of {kind}()", arg_path(name))
    if size > max_bytes:
        check_size(args, kind, max_bytes, size)
    return text


def free_args_json(args: Any, kind: str, max_bytes: int) -> tuple[dict[str, Any], str]:
    """Arguments of a kind without a signature (run elsewhere), checked in full: the stored
    value and its JSON text, as `args_json` gives for a declared kind."""
    if not isinstance(args, dict):
        raise InvalidArgumentsError(
            f"arguments of {kind} must be an object of name: value", f"arguments of {kind}", "args"
        )
    checked = check_json(args, f"arguments of {kind}", path="args")
    return checked, args_json(checked, kind, max_bytes)


def check_size(
    args: dict[str, Any], kind: str, max_bytes: int = DEFAULT_MAX_BYTES, size: int | None = None
) -> None:
    """Refuse arguments whose JSON form exceeds `max_bytes` (`size`: measured already)."""
    if size is None:
        text = _encode(args)
        size = len(text) if text.isascii() else len(text.encode())
    if size > max_bytes:
        biggest = max(
            args,
            key=lambda k: len(json.dumps(args[k], ensure_ascii=False)),
            default=None,
        )
        raise PayloadTooLargeError(
            f"arguments of {kind!r} are {size:,} bytes of JSON, over the limit of "
            f"{max_bytes:,} (largest: {biggest!r}); store the data elsewhere and pass a key",
            biggest,
            None if biggest is None else arg_path(biggest),
        )
