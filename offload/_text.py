"""Strings that every store keeps alike, and how to name a place inside a JSON value.

Two kinds of character cannot be stored the same way on every engine: NUL (`\\x00`), which
PostgreSQL refuses in text and jsonb but SQLite keeps, and a lone surrogate (`\\ud800`), which
is not Unicode at all and cannot be encoded as UTF-8 (Python makes them when bytes are decoded
with `errors="surrogateescape"`, as it does for `sys.argv`). Data that holds one is refused
where it enters, with the same error on both engines; text that is only a diagnostic (an
error message, a traceback) has them replaced by U+FFFD instead.

Paths are written as the rule language writes fields: `args.items[2].name`,
`meta["trace-id"]`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

NUL = "\x00"
REPLACEMENT = "\ufffd"
_SURROGATES = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def text_problem(text: str) -> str | None:
    """What keeps `text` from being stored alike everywhere, or None when nothing does."""
    if NUL in text:
        return "a NUL character (\\x00)"
    if not text.isascii():
        surrogate = first_surrogate(text)
        if surrogate is not None:
            return f"a lone surrogate ({surrogate!r})"
    return None


def first_surrogate(text: str) -> str | None:
    """The first lone surrogate in `text`, or None (also None for plain ASCII, at once)."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return text[exc.start]
    return None


def name_problem(name: str, max_length: int) -> str | None:
    """What is wrong with a queue, job type or schedule name, or None. Names are matched as
    whole strings, so `"default\\n"` would be a queue of its own that shows as "default":
    control characters, lone surrogates and white space at either end are refused."""
    if not name:
        return "is empty"
    if len(name) > max_length:
        return f"is {len(name):,} characters long, more than {max_length}"
    problem = label_problem(name)
    if problem is not None:
        return problem
    if name != name.strip():
        return "starts or ends with white space"
    return None


def label_problem(text: str) -> str | None:
    """Why `text` cannot be shown as a one-line label (a control character or a lone
    surrogate), or None."""
    problem = text_problem(text)
    if problem is not None:
        return f"holds {problem}"
    control = _CONTROL.search(text)
    if control is not None:
        return f"holds a control character ({control.group()!r})"
    return None


def shown(text: str, limit: int = 40) -> str:
    """`repr(text)`, cut to about `limit` characters: safe to print whatever `text` holds."""
    return repr(text) if len(text) <= limit else repr(text[: limit - 3]) + "..."


def advice(problem: str) -> str:
    """What to do about a `text_problem`."""
    if problem.startswith("a NUL"):
        return (
            "PostgreSQL cannot store it and offload refuses it on every engine alike; remove "
            "it, or pass binary data encoded (e.g. base64)"
        )
    return (
        "it is not valid Unicode and cannot be encoded as UTF-8; decode the text it came from "
        "properly (e.g. bytes.decode('utf-8', errors='replace')), or pass binary data encoded "
        "(e.g. base64)"
    )


def printable(text: str) -> str:
    """`text` with NUL and lone surrogates replaced by U+FFFD: for diagnostics only."""
    if NUL in text:
        text = text.replace(NUL, REPLACEMENT)
    if first_surrogate(text) is None:
        return text
    return _SURROGATES.sub(REPLACEMENT, text)


def step(path: str, key: str | int) -> str:
    """`path` followed by one key or index: `.name`, `["odd key"]` or `[2]`."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if key.isidentifier() and key.isascii():
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key)}]"


def join(root: str, keys: Sequence[str | int]) -> str:
    """The path of `keys` under `root`."""
    out = root
    for key in keys:
        out = step(out, key)
    return out
