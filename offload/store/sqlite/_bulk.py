"""The SQLite engine's bulk family: job search, and retry, cancel and discard of every job a
filter matches.

A bulk operation walks the matching jobs by id in batches: each batch picks its ids and changes
them in one `BEGIN IMMEDIATE` transaction, so the writer lock is held for one batch at a time
and workers claim and finish jobs between batches (offload/store/_bulk.py). On an executor,
every batch runs in its one transaction. A discard keeps what the rows counted through the
totals family's `keep`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from offload.store._bulk import (
    BATCH,
    BulkOps,
    BulkResult,
    JobMatch,
    check_action,
    check_batch,
    walk,
)
from offload.store._codec import dumps
from offload.store._sql import queries
from offload.store.sqlite._base import SQLiteBase
from offload.store.sqlite._totals import keep

if TYPE_CHECKING:
    from offload.store._contract import JobRecord


@cache
def _queries() -> dict[str, str]:
    """The bulk queries with the `match` fragment put in."""
    named = queries("sqlite", "bulk")
    match = named["match"]
    return {name: sql.replace("{match}", match) for name, sql in named.items()}


def match_params(match: JobMatch, states: Sequence[str] | None) -> dict[str, Any]:
    """The named parameters of the `match` fragment (`states` instead of the match's own)."""
    return {
        "states": None if states is None else dumps(list(states)),
        "kind": match.kind,
        "queue": match.queue,
        "inserted_since": match.inserted_since,
        "inserted_until": match.inserted_until,
        "finished_since": match.finished_since,
        "finished_until": match.finished_until,
        "args": match.args_contain,
        "error": match.error_contain,
    }


def _name(stored: bytes | str) -> str:
    """A queue or kind name read as a blob; bytes that are not UTF-8 are replaced."""
    return stored.decode("utf-8", "replace") if isinstance(stored, bytes) else stored


class SQLiteBulk(SQLiteBase, BulkOps):
    """Search and bulk operations, on any executor (on a store transaction or a caller's
    connection, every batch runs in that one transaction)."""

    def job_search(
        self, match: JobMatch, limit: int = 50, before_id: int | None = None
    ) -> list[JobRecord]:
        params = match_params(match, match.states)
        params["limit"] = int(limit)
        params["before_id"] = None if before_id is None else int(before_id)
        ids = [row[0] for row in self._read(_queries()["search_page"], params)]
        found = (self.job_get(i) for i in ids)
        return [r for r in found if r is not None]  # one discarded meanwhile is left out

    def job_bulk(
        self, action: str, match: JobMatch, *, dry_run: bool = False, batch: int = BATCH
    ) -> BulkResult:
        check_action(action)
        check_batch(batch)
        acting = match.states_for(action)
        if not acting:  # asked for states the action does not apply to
            return BulkResult(action, dry_run, 0)
        q = _queries()
        params = match_params(match, acting)
        first, last = self._read(q["id_range"])[0]
        params.update(after=first, upto=last, batch=batch)
        if dry_run:
            return BulkResult(action, True, int(self._read(q["bulk_count"], params)[0][0]))

        def step(after: int, upto: int) -> tuple[int | None, int, int]:
            params.update(after=after, upto=upto)
            picked, changed = self._tx(lambda c: self._bulk_batch(c, action, params))
            if action == "retry" and changed:
                self._rung(None, True)  # jobs became available: wake the workers
            return (picked[-1] if picked else None), len(picked), changed

        return BulkResult(action, False, walk(first, last, batch, step))

    def _bulk_batch(
        self, c: sqlite3.Connection, action: str, params: dict[str, Any]
    ) -> tuple[list[int], int]:
        """Pick the next batch and act on it, in the caller's transaction: the ids picked
        and how many jobs changed."""
        q = _queries()
        picked = [row[0] for row in c.execute(q["bulk_ids"], params)]
        if not picked:
            return picked, 0
        args = {"ids": dumps(picked), "states": params["states"], "now": self.now()}
        if action == "discard":
            gone = c.execute(q["bulk_discard"], args).fetchall()
            keep(c, [(_name(q), _name(k), st, a) for q, k, st, a in gone])
            return picked, len(gone)
        sql = q["bulk_retry"] if action == "retry" else q["bulk_cancel"]
        return picked, c.execute(sql, args).rowcount
