"""Keyset pagination through SQLAlchemy (a Connection or a Session): over a Core table, or over
a text query wrapped as a subquery. Rows come as SQLAlchemy `Row` objects. The statements are
built with SQLAlchemy's expression language, so values are always bound parameters."""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from offload.iteration._cursor import CursorError
from offload.iteration._keyset import NAME, Cursor, Keyset, check_query, identifier


def alchemy_rows(
    conn: Any,
    keyset: Keyset,
    table: Any,
    query: Any,
    params: Mapping[str, Any] | None,
) -> Iterator[tuple[Any, Cursor]]:
    """Checks the arguments now and returns the rows' iterator."""
    import sqlalchemy as sa

    if (table is None) == (query is None):
        raise ValueError(f"{NAME}: give exactly one of table= or query=")
    if params is not None and not isinstance(params, Mapping):
        raise ValueError(f"{NAME}: with SQLAlchemy, params must be a mapping of :name values")
    if table is not None:
        if params:
            raise ValueError(f"{NAME}: params= goes with query=, not table=")
        if isinstance(table, str):
            identifier(table, "table")
            schema, _, name = table.rpartition(".")
            source: Any = sa.table(
                name, *(sa.column(k) for k in keyset.keys), schema=schema or None
            )
            what = f"table {table!r}"
            select_all = False
        elif isinstance(table, sa.Table):
            source = table
            what = f"table {table.name!r}"
            select_all = True
            keyset.check_columns([c.key for c in table.columns], what)
        else:
            raise TypeError(
                f"{NAME}: table must be a name or a sqlalchemy.Table, not {type(table).__name__}"
            )
    else:
        if isinstance(query, sa.TextClause):
            clause = query
            check_query(query.text)
            if params:
                clause = clause.bindparams(**params)
        else:
            clause = sa.text(check_query(query)).bindparams(**(params or {}))
        source = clause.columns(*(sa.column(k) for k in keyset.keys)).subquery("_offload_rows")
        what = "the query"
        select_all = False
    return _pages(conn, keyset, source, select_all, what)


def _pages(
    conn: Any, keyset: Keyset, source: Any, select_all: bool, what: str
) -> Iterator[tuple[Any, Cursor]]:
    import sqlalchemy as sa

    columns = [source.c[k] for k in keyset.keys]
    base = (
        sa.select(source) if select_all else sa.select(sa.literal_column("*")).select_from(source)
    )
    if not select_all:
        names = list(conn.execute(base.limit(0)).keys())
        keyset.check_columns(names, what)
    after = keyset.after
    while True:
        statement = base
        if after is not None:
            values = [_typed(c, v) for c, v in zip(columns, after, strict=True)]
            if len(columns) == 1:
                statement = statement.where(columns[0] > values[0])
            else:
                statement = statement.where(sa.tuple_(*columns) > sa.tuple_(*values))
        statement = statement.order_by(*columns).limit(keyset.page_size + 1)
        fetched = conn.execute(statement).all()
        rows, more = keyset.page(fetched, lambda row: _key(row, keyset.keys))
        for row in rows:
            after = _key(row, keyset.keys)
            yield row, keyset.cursor(after)
        if not more:
            return


def _key(row: Any, keys: Sequence[str]) -> tuple[Any, ...]:
    mapping = row._mapping
    return tuple(mapping[k] for k in keys)


def _typed(column: Any, value: Any) -> Any:
    """A cursor value bound against its column: a typed column gets its own Python type back
    (a date stored in the cursor as text becomes a date again); an untyped one the value."""
    import sqlalchemy as sa

    try:
        python_type = column.type.python_type
    except NotImplementedError:
        python_type = None
    if isinstance(value, str) and python_type is not None and python_type is not str:
        try:
            value = _parse(python_type, value)
        except ValueError as exc:
            raise CursorError(
                f"{NAME}: the cursor value {value!r} does not read as {python_type.__name__} "
                f"for key column {column.name!r}: {exc}"
            ) from None
    return sa.bindparam(None, value, type_=column.type if python_type else None)


def _parse(python_type: type, value: str) -> Any:
    """A cursor's text read back as the column's Python type (dates, decimals, UUIDs)."""
    parsers: dict[type, Any] = {
        datetime.datetime: datetime.datetime.fromisoformat,
        datetime.date: datetime.date.fromisoformat,
        datetime.time: datetime.time.fromisoformat,
        decimal.Decimal: decimal.Decimal,
        uuid.UUID: uuid.UUID,
    }
    parser = parsers.get(python_type)
    return value if parser is None else parser(value)
