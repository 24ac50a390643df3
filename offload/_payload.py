"""Checks that a job's arguments are plain JSON, naming the argument at fault.

Arguments are checked when a job is enqueued, so a bad value fails in the producer, where the
programmer can see it, and never reaches a worker. Only what JSON holds losslessly is accepted:
no NaN or infinity, integers within 64 bits, string keys, bounded depth and size.
"""

from __future__ import annotations

import json
import math
from typing import Any

from offload._errors import InvalidArgumentsError, PayloadTooLargeError

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


def _encode(value: Any) -> str:
    if _chunks is None:  # pragma: no cover - Pythons without the C accelerator
        return _encoder.encode(value)
    return "".join(_chunks(value, 0))


def check_json(value: Any, where: str, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Return `value` with tuples as lists, or raise naming `where` (e.g. "argument 'x'")."""
    return _check(value, where, where, 0, max_depth)


def _check(value: Any, root: str, path: str, depth: int, max_depth: int) -> Any:
    if depth > max_depth:
        raise InvalidArgumentsError(
            f"{root} nests deeper than {max_depth} levels at {path}; flatten it or pass an id",
            root,
        )
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        if not MIN_INT <= value <= MAX_INT:
            raise InvalidArgumentsError(
                f"{root} holds an integer outside 64 bits at {path}; pass it as a string", root
            )
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgumentsError(
                f"{root} holds {value!r} at {path}, which JSON cannot represent", root
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
                )
            out[k] = _check(v, root, f"{path}[{k!r}]", depth + 1, max_depth)
        return out
    raise InvalidArgumentsError(
        f"{root} is a {type(value).__name__} at {path}, which is not JSON; pass plain data "
        "(str, int, float, bool, None, list, dict) such as an id or an ISO date string",
        root,
    )


def args_json(args: dict[str, Any], kind: str, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """Checked arguments as the JSON text the store keeps; refused over `max_bytes`."""
    text = _encode(args)
    if len(text) > max_bytes // 4 and len(text.encode()) > max_bytes:
        check_size(args, kind, max_bytes)
    return text


def check_size(args: dict[str, Any], kind: str, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
    """Refuse arguments whose JSON form exceeds `max_bytes`."""
    size = len(json.dumps(args, separators=(",", ":"), ensure_ascii=False).encode())
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
        )
