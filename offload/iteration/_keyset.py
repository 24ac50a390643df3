"""Keyset pagination, the part every driver shares: the key, the cursor's shape, the SQL text
for DB-API drivers, and the checks on each page. A page is the rows after the last key seen,
ordered by the key, `LIMIT page_size + 1`: never OFFSET, so a page costs the same at row ten
million as at row ten. The extra row shows whether the key repeats across the page boundary,
which would otherwise skip rows silently."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from offload.iteration._cursor import CursorError, JSONScalar, describe, key_to_json

NAME = "over_rows"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*\Z")
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
_PAGING = re.compile(r"\b(LIMIT|OFFSET|FETCH)\b", re.IGNORECASE)

Cursor = JSONScalar | list[JSONScalar]
"""A keyset cursor: the last row's key, one value, or a list for a composite key."""


def identifier(name: object, what: str) -> str:
    """`name` (`table` or `schema.table`) checked and double-quoted, for SQL text: only letters,
    digits, `_` and `$`, not starting with a digit, so nothing can be pasted in through it."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"{NAME}: the {what} must be a non-empty string, not {describe(name)}")
    parts = name.split(".")
    for part in parts:
        if not _IDENTIFIER.match(part):
            raise ValueError(
                f"{NAME}: the {what} {name!r} is not a plain SQL name (letters, digits, _ "
                "and $, not starting with a digit, `schema.table` for a table)"
            )
    return ".".join(f'"{part}"' for part in parts)


@dataclass(frozen=True)
class Keyset:
    """What a keyset enumerator was asked for, checked: the key columns, the page size and the
    key to start after (None: from the first row)."""

    keys: tuple[str, ...]
    page_size: int
    after: tuple[Any, ...] | None

    @classmethod
    def build(cls, key: str | Sequence[str], page_size: int, cursor: object) -> Keyset:
        """Checks the arguments every driver takes alike."""
        keys = (key,) if isinstance(key, str) else tuple(key)
        if not keys or not all(isinstance(k, str) for k in keys):
            raise ValueError(
                f"{NAME}: key must name a column or a tuple of columns, not {describe(key)}"
            )
        if len(set(keys)) != len(keys):
            raise ValueError(f"{NAME}: key names a column twice: {keys!r}")
        for k in keys:
            identifier(k, "key column")
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise ValueError(f"{NAME}: page_size must be a positive int, not {describe(page_size)}")
        return cls(keys, page_size, _after(keys, cursor))

    def check_columns(self, columns: Sequence[str], source: str) -> None:
        """Refuses a key that is not a column of the rows, or is one twice (a join's `id`)."""
        for k in self.keys:
            found = sum(1 for c in columns if c == k)
            if found == 0:
                raise ValueError(
                    f"{NAME}: the key column {k!r} is missing from the rows of {source} "
                    f"(their columns: {', '.join(columns) or 'none'})"
                )
            if found > 1:
                raise ValueError(
                    f"{NAME}: the key column {k!r} appears {found} times in the rows of "
                    f"{source}; give the columns distinct names"
                )

    def page(self, rows: Sequence[Any], key_of: Any) -> tuple[list[Any], bool]:
        """The rows of one page to hand on and whether more may follow. `rows` were fetched
        with `LIMIT page_size + 1`; `key_of(row)` gives a row's key tuple. A NULL key, or two
        rows with the same key (the key is not unique), is an error: keyset pagination would
        skip rows."""
        previous: tuple[Any, ...] | None = None
        for row in rows:
            current = key_of(row)
            for column, value in zip(self.keys, current, strict=True):
                if value is None:
                    raise ValueError(
                        f"{NAME}: the key column {column!r} is NULL in a row; keyset "
                        "pagination needs a key that is never NULL"
                    )
            if previous is not None and current == previous:
                raise ValueError(
                    f"{NAME}: two rows have the same key {_show(self.keys, current)}; the key "
                    "must be unique (add columns to it, e.g. key=(..., 'id'))"
                )
            previous = current
        more = len(rows) > self.page_size
        return list(rows[: self.page_size]), more

    def cursor(self, key: tuple[Any, ...]) -> Cursor:
        """A row's key as the JSON cursor: one value for one column, else a list."""
        values = [key_to_json(NAME, c, v) for c, v in zip(self.keys, key, strict=True)]
        return values[0] if len(values) == 1 else values


def _after(keys: tuple[str, ...], cursor: object) -> tuple[Any, ...] | None:
    if cursor is None:
        return None
    if len(keys) == 1:
        if isinstance(cursor, bool) or not isinstance(cursor, int | float | str):
            raise CursorError(
                f"{NAME}: the cursor for key {keys[0]!r} must be the last row's key value "
                f"(an int, float or str), not {describe(cursor)}"
            )
        return (cursor,)
    if (
        not isinstance(cursor, list | tuple)
        or len(cursor) != len(keys)
        or not all(isinstance(v, int | float | str) for v in cursor)
    ):
        raise CursorError(
            f"{NAME}: the cursor for key {keys!r} must be a list of {len(keys)} values (the "
            f"last row's key: ints, floats or strs), not {describe(cursor)}"
        )
    return tuple(cursor)


def _show(keys: tuple[str, ...], values: tuple[Any, ...]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in zip(keys, values, strict=True))


def check_query(query: object) -> str:
    """A text query to page through: a string whose paging (LIMIT, OFFSET, FETCH) is left to
    the enumerator, which adds its own."""
    if not isinstance(query, str) or not query.strip():
        raise ValueError(f"{NAME}: query must be a non-empty SQL string, not {describe(query)}")
    bare = _QUOTED.sub("''", query)
    found = _PAGING.search(bare)
    if found:
        raise ValueError(
            f"{NAME}: the query has {found.group(1).upper()}; leave paging to the enumerator "
            "(it adds its own ORDER BY on the key and LIMIT)"
        )
    return query.strip().rstrip(";")


@dataclass(frozen=True)
class Statement:
    """The SQL of a DB-API page query and a function giving its parameters."""

    probe: str
    first: str
    next: str
    named: bool
    user: Sequence[Any] | Mapping[str, Any]

    def params(self, after: tuple[Any, ...] | None, limit: int) -> Any:
        """The parameters of a page query: the user's, then the key's, then the limit."""
        if self.named:
            named = dict(self.user)
            named.update({f"_offload_k{i}": v for i, v in enumerate(after or ())})
            named["_offload_limit"] = limit
            return named
        return [*self.user, *(after or ()), limit]

    @property
    def probe_params(self) -> Any:
        return dict(self.user) if self.named else list(self.user)


def dbapi_statement(
    keyset: Keyset,
    table: str | None,
    query: str | None,
    params: Sequence[Any] | Mapping[str, Any] | None,
    style: str,
) -> Statement:
    """The page queries for a DB-API driver. `style` is the driver's placeholder pair,
    "qmark" (sqlite3: `?`, `:name`) or "format" (psycopg: `%s`, `%(name)s`). With mapping
    params every placeholder is named, else positional: the user's own come first in the
    text, as in the parameter list."""
    if (table is None) == (query is None):
        raise ValueError(f"{NAME}: give exactly one of table= or query=")
    if table is not None:
        source = identifier(table, "table")
        if params:
            raise ValueError(f"{NAME}: params= goes with query=, not table=")
    else:
        source = f"({check_query(query)})"
    named = isinstance(params, Mapping)
    user: Sequence[Any] | Mapping[str, Any] = params if params is not None else ()
    if not named and isinstance(params, str | bytes):
        raise ValueError(f"{NAME}: params must be a sequence or a mapping, not a string")

    def mark(name: str) -> str:
        if style == "qmark":
            return f":{name}" if named else "?"
        return f"%({name})s" if named else "%s"

    columns = [identifier(k, "key column") for k in keyset.keys]
    order = ", ".join(columns)
    marks = [mark(f"_offload_k{i}") for i in range(len(columns))]
    if len(columns) == 1:
        where = f"{columns[0]} > {marks[0]}"
    else:
        where = f"({order}) > ({', '.join(marks)})"
    base = f"SELECT * FROM {source} AS _offload_rows"
    tail = f"ORDER BY {order} LIMIT {mark('_offload_limit')}"
    return Statement(
        probe=f"{base} LIMIT 0",
        first=f"{base} {tail}",
        next=f"{base} WHERE {where} {tail}",
        named=named,
        user=user,
    )
