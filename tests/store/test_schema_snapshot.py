"""A fresh store's schema equals the checked-in snapshot of every migration applied, per engine.

The snapshots (tests/store/schema/<engine>.txt) are normalised dumps: SQLite's `sqlite_master`
text without comments, one column a line; PostgreSQL's catalog (columns, constraints, indexes,
views, functions, triggers, sequences, types) of the store's schema, with the schema's name
taken out. A schema change shows up as a diff of them in review. After a new migration, or any
intended change to the schema, regenerate both with:

    OFFLOAD_UPDATE_SCHEMA_SNAPSHOT=1 python -m pytest tests/store/test_schema_snapshot.py

(with PostgreSQL reachable at `$OFFLOAD_TEST_POSTGRES`, as for every test; `CI=true` makes
its absence fail rather than skip the PostgreSQL snapshot), and commit them.
"""

from __future__ import annotations

import difflib
import os
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

import pytest

from offload.store._contract import Store
from offload.store._sql import migrations

SNAPSHOTS = Path(__file__).parent / "schema"
UPDATE = "OFFLOAD_UPDATE_SCHEMA_SNAPSHOT"
REGENERATE = f"{UPDATE}=1 python -m pytest tests/store/test_schema_snapshot.py"


def test_a_fresh_schema_equals_the_snapshot_of_every_migration_applied(store: Store) -> None:
    dump = _sqlite_dump(store) if store.engine == "sqlite" else _postgres_dump(store)
    fresh = _header(store.engine) + dump
    path = SNAPSHOTS / f"{store.engine}.txt"
    if os.environ.get(UPDATE, "").lower() in ("1", "true", "yes"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(fresh, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"no schema snapshot at {path}; write it with:\n  {REGENERATE}", pytrace=False)
    snapshot = path.read_text(encoding="utf-8")
    if fresh != snapshot:
        diff = "".join(
            difflib.unified_diff(
                snapshot.splitlines(keepends=True),
                fresh.splitlines(keepends=True),
                fromfile=f"tests/store/schema/{store.engine}.txt",
                tofile=f"a fresh {store.engine} store",
            )
        )
        pytest.fail(
            f"the {store.engine} schema of a fresh store differs from its snapshot:\n{diff}\n"
            f"If the change is intended (a new migration), regenerate the snapshots with:\n"
            f"  {REGENERATE}\nand commit them.",
            pytrace=False,
        )


def test_the_snapshot_header_names_every_migration() -> None:
    for engine in ("sqlite", "postgres"):
        path = SNAPSHOTS / f"{engine}.txt"
        head = path.read_text(encoding="utf-8").split("\n\n", 1)[0] + "\n\n"
        assert head == _header(engine), (
            f"{path} was written before the newest {engine} migration; regenerate it with:\n"
            f"  {REGENERATE}"
        )


def _header(engine: str) -> str:
    names = " ".join(f"{version:04d}_{name}" for version, name, _ in migrations(engine))
    return (
        f"# The {engine} schema of a fresh offload store, every migration applied (normalised).\n"
        f"# Written by tests/store/test_schema_snapshot.py; regenerate with:\n"
        f"#   {REGENERATE}\n"
        f"# migrations: {names}\n\n"
    )


# --- SQLite -------------------------------------------------------------------------------
def _sqlite_dump(store: Store) -> str:
    """Every table, index, view and trigger as SQLite keeps its text, normalised: comments out,
    whitespace collapsed, a table's columns and constraints one a line."""
    path = urlparse(store.url).path[1:]
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT type, name, sql FROM sqlite_master "
            "WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
            "ORDER BY tbl_name, CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 ELSE 2 END, name"
        ).fetchall()
    finally:
        conn.close()
    assert rows, f"{path} holds no schema"
    out: list[str] = []
    for kind, name, sql in rows:
        out.append(f"{kind} {name}")
        lines = _normal(sql, split=kind == "table")
        out.extend(f"  {line}" for line in lines)
    return "\n".join(out) + "\n"


def _normal(sql: str, split: bool) -> list[str]:
    """SQL text without comments and with runs of whitespace as one space, quoted text kept as
    it is; with `split`, a line per top-level item of the first parenthesis (a table's columns
    and constraints)."""
    lines: list[str] = [""]
    quote, depth, i = "", 0, 0
    while i < len(sql):
        ch = sql[i]
        if quote:
            lines[-1] += ch
            quote = "" if ch == quote else quote
        elif ch in "'\"`[":
            quote = "]" if ch == "[" else ch
            lines[-1] += ch
        elif sql.startswith("--", i):
            i = sql.find("\n", i)
            i = len(sql) if i < 0 else i
            continue
        elif ch.isspace():
            if lines[-1] and not lines[-1].endswith(" "):
                lines[-1] += " "
        elif split and ch == "(" and depth == 0:
            depth = 1
            lines[-1] += ch
            lines.append("  ")
        elif split and depth >= 1 and ch in "(),":
            if ch == "(":
                depth += 1
                lines[-1] += ch
            elif ch == ")" and depth > 1:
                depth -= 1
                lines[-1] += ch
            elif ch == ",":
                if depth == 1:
                    lines[-1] = lines[-1].rstrip() + ","
                    lines.append("  ")
                else:
                    lines[-1] += ch
            else:  # the list ends
                depth, split = 0, False
                lines.append(")")
        else:
            lines[-1] += ch
        i += 1
    return [line.rstrip() for line in lines if line.strip()]


# --- PostgreSQL ---------------------------------------------------------------------------
def _postgres_dump(store: Store) -> str:
    """The catalog of the store's schema, without its name: tables with their columns,
    constraints and indexes, then views, functions, triggers, sequences and types."""
    import psycopg

    parts = urlparse(store.url)
    query = parse_qsl(parts.query)
    schema = dict(query)["schema"]
    url = urlunparse(parts._replace(query=urlencode([(k, v) for k, v in query if k != "schema"])))
    with psycopg.connect(url, autocommit=True) as conn:
        out = _postgres_lines(conn, schema)
    assert out, f"schema {schema} holds nothing"
    text = "\n".join(out) + "\n"
    text = text.replace(f'"{schema}".', "").replace(f"{schema}.", "")
    return text.replace(schema, "{schema}")


def _postgres_lines(conn: Any, schema: str) -> list[str]:
    def rows(sql: str) -> list[tuple[Any, ...]]:
        return list(conn.execute(sql, {"schema": schema}).fetchall())

    out: list[str] = []
    tables = rows(
        "SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p') ORDER BY c.relname"
    )
    for oid, table in tables:
        out.append(f"table {table}")
        for name, typ, notnull, default, identity, generated in conn.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
            "pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated "
            "FROM pg_attribute a LEFT JOIN pg_attrdef d "
            "ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
            "WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            (oid,),
        ).fetchall():
            line = f"  column {name} {typ}" + (" NOT NULL" if notnull else "")
            if default is not None:
                line += f" {'GENERATED ALWAYS AS' if generated else 'DEFAULT'} {default}"
            if identity:
                line += f" IDENTITY ({identity})"
            out.append(line)
        for name, definition in conn.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s ORDER BY conname",
            (oid,),
        ).fetchall():
            out.append(f"  constraint {name} {definition}")
        for name, definition in conn.execute(
            "SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = %s ORDER BY i.relname",
            (oid,),
        ).fetchall():
            out.append(f"  {definition}")
        for name, definition in conn.execute(
            "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger "
            "WHERE tgrelid = %s AND NOT tgisinternal ORDER BY tgname",
            (oid,),
        ).fetchall():
            out.append(f"  {definition}")
    for name, kind, definition in rows(
        "SELECT c.relname, c.relkind, pg_get_viewdef(c.oid) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %(schema)s AND c.relkind IN ('v', 'm') ORDER BY c.relname"
    ):
        out.append(f"{'view' if kind == 'v' else 'materialized view'} {name}")
        out.extend(f"  {line}".rstrip() for line in definition.strip().splitlines())
    for name, arguments, definition in rows(
        "SELECT p.proname, pg_get_function_identity_arguments(p.oid), pg_get_functiondef(p.oid) "
        "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = %(schema)s AND p.prokind IN ('f', 'p', 'w') ORDER BY 1, 2"
    ):
        out.append(f"function {name}({arguments})")
        out.extend(f"  {line}".rstrip() for line in definition.strip().splitlines())
    for (name,) in rows(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %(schema)s AND c.relkind = 'S' ORDER BY c.relname"
    ):
        out.append(f"sequence {name}")
    for name, kind, labels in rows(
        "SELECT t.typname, t.typtype, "
        "(SELECT string_agg(e.enumlabel, ', ' ORDER BY e.enumsortorder) FROM pg_enum e "
        "WHERE e.enumtypid = t.oid) "
        "FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
        "WHERE n.nspname = %(schema)s AND t.typtype IN ('e', 'd', 'r') "
        "OR (n.nspname = %(schema)s AND t.typtype = 'c' AND "
        "(SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c') ORDER BY 1"
    ):
        out.append(f"type {name} {kind}" + (f" ({labels})" if labels else ""))
    return out
