"""A small JSON Schema checker for the subset the OpenAPI document uses.

Requests are checked against the very schemas `/openapi.json` publishes, so the document and
the server cannot drift apart. Supported: type (with OpenAPI's `nullable`), enum, properties,
required, additionalProperties (boolean), items, minItems, maxItems, minimum, maximum,
exclusiveMinimum/exclusiveMaximum (OpenAPI 3.0 booleans), minLength, maxLength, pattern,
format date-time, `allOf`, and `not` (a schema the value must not fit; the refusal quotes the
`description` beside it, else names what must not be held together); `$ref` is accepted
unchecked.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "null": (type(None),),
}


@lru_cache(maxsize=256)
def _pattern(expr: str) -> re.Pattern[str]:
    """A schema pattern with JSON Schema's (ECMA-262's) meaning of `$`: the end of the text.
    Python's `$` also matches before a final newline, which would let `"default\\n"` pass
    `^[a-z]+$`; each `$` outside a character class becomes `\\Z`."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(expr):
        c = expr[i]
        if c == "\\":
            out.append(expr[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "$":
            c = "\\Z"
        out.append(c)
        i += 1
    return re.compile("".join(out))


def _type_ok(value: Any, expected: str) -> bool:
    if expected == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _TYPES[expected])


def parse_datetime(text: str) -> datetime | None:
    """An RFC 3339 date-time with a time zone, or None."""
    if not re.fullmatch(
        r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", text
    ):
        return None
    try:
        value = datetime.fromisoformat(text.upper().replace(" ", "T"))
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def check(value: Any, schema: dict[str, Any], where: str = "body") -> str | None:
    """None when `value` fits `schema`, else a message naming where it does not.

    A `$ref` is not followed: the server checks what it names (JSON payloads) itself.
    """
    if "$ref" in schema:
        return None
    if value is None and schema.get("nullable"):
        return None
    expected = schema.get("type")
    if expected is not None and not _type_ok(value, expected):
        return f"{where} must be {'an' if expected[0] in 'aeiou' else 'a'} {expected}"
    if "enum" in schema and value not in schema["enum"]:
        options = ", ".join(repr(v) for v in schema["enum"][:20])
        return f"{where} must be one of {options}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema:
            low = schema["minimum"]
            if value < low or (schema.get("exclusiveMinimum") and value == low):
                op = ">" if schema.get("exclusiveMinimum") else ">="
                return f"{where} must be {op} {low}"
        if "maximum" in schema:
            high = schema["maximum"]
            if value > high or (schema.get("exclusiveMaximum") and value == high):
                op = "<" if schema.get("exclusiveMaximum") else "<="
                return f"{where} must be {op} {high}"
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            return f"{where} must have at least {schema['minLength']} characters"
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            return f"{where} must have at most {schema['maxLength']} characters"
        if "pattern" in schema and not _pattern(schema["pattern"]).search(value):
            return f"{where} must match {schema['pattern']}"
        if schema.get("format") == "date-time" and parse_datetime(value) is None:
            return f"{where} must be an RFC 3339 date-time with a zone, e.g. 2030-01-01T00:00:00Z"
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            return f"{where} must have at least {schema['minItems']} items"
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            return f"{where} must have at most {schema['maxItems']} items"
        items = schema.get("items")
        if items is not None:
            for i, item in enumerate(value):
                problem = check(item, items, f"{where}[{i}]")
                if problem:
                    return problem
    if isinstance(value, dict):
        for name in schema.get("required", ()):
            if name not in value:
                return f"{where} needs the member {name!r}"
        props: dict[str, Any] = schema.get("properties", {})
        if schema.get("additionalProperties") is False:
            extra = [k for k in value if k not in props]
            if extra:
                allowed = ", ".join(props) or "none"
                return f"{where} has an unknown member {extra[0]!r} (allowed: {allowed})"
        for name, sub in props.items():
            if name in value:
                problem = check(value[name], sub, f"{where}.{name}")
                if problem:
                    return problem
    for sub in schema.get("allOf", ()):
        problem = check(value, sub, where)
        if problem:
            return problem
    if "not" in schema and check(value, schema["not"], where) is None:
        if "description" in schema:
            return f"{where} {schema['description']}"
        forbidden = schema["not"].get("required", ())
        if forbidden:
            return f"{where} must not hold all of {', '.join(forbidden)} together"
        return f"{where} fits a form it must not have"
    return None
