"""Loads an engine's named SQL queries from its package data, once."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


@cache
def queries(dialect: str, file: str = "queries") -> dict[str, str]:
    """Named queries of a dialect, from `offload/store/<dialect>/<file>.sql`."""
    text = resources.files("offload.store").joinpath(dialect, f"{file}.sql").read_text("utf-8")
    parts = _NAME.split(text)
    named: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        named[name] = body.strip().rstrip(";")
    return named


@cache
def migrations(dialect: str) -> list[tuple[int, str, str]]:
    """Numbered migrations of a dialect as (version, name, sql), in order."""
    folder = resources.files("offload.store").joinpath(dialect, "migrations")
    found: list[tuple[int, str, str]] = []
    for entry in folder.iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            found.append((int(match[1]), match[2], entry.read_text("utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    # Numbers are reserved ahead for work under way, so a gap may be filled later (a store
    # applies every migration it has not recorded, whatever its number); a number used twice
    # is an error.
    if not versions or versions[0] != 1 or len(set(versions)) != len(versions):
        raise RuntimeError(f"{dialect} migrations must be numbered from 1, once each: {versions}")
    return found
