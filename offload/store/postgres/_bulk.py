"""The PostgreSQL engine's bulk family: job search, and retry, cancel and discard of every job
a filter matches.

A bulk operation walks the matching jobs by id in batches: each batch is one statement that
picks its ids and changes them (on the store itself in autocommit, so each batch commits on
its own and holds its row locks for that statement only; on an executor, in its transaction).
Every statement is sent unprepared, so the server plans it for the filters at hand rather than
with a generic plan (offload/store/_bulk.py).
"""

from __future__ import annotations

from collections.abc import Sequence
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
from offload.store._sql import queries
from offload.store.postgres._core import PostgresCore

if TYPE_CHECKING:
    from offload.store._contract import JobRecord


def match_params(match: JobMatch, states: Sequence[str] | None) -> dict[str, Any]:
    """The named parameters of the `match` fragment (`states` instead of the match's own)."""
    return {
        "states": None if states is None else list(states),
        "kind": match.kind,
        "queue": match.queue,
        "inserted_since": _float(match.inserted_since),
        "inserted_until": _float(match.inserted_until),
        "finished_since": _float(match.finished_since),
        "finished_until": _float(match.finished_until),
        "args": match.args_contain,
        "error": match.error_contain,
    }


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


class PostgresBulk(PostgresCore, BulkOps):
    """Search and bulk operations, on any executor (on a store transaction or a caller's
    connection, every batch runs in that one transaction)."""

    if TYPE_CHECKING:

        def job_get(self, job_id: int) -> JobRecord | None: ...  # the admin family's

    @property
    def _a(self) -> dict[str, str]:
        cached: dict[str, str] | None = getattr(self, "_bulk_queries", None)
        if cached is None:
            named = queries("postgres", "bulk")
            match = named["match"]
            cached = {k: self._expand(v.replace("{match}", match)) for k, v in named.items()}
            self._bulk_queries = cached
        return cached

    def _bulk_rows(self, name: str, params: dict[str, Any]) -> list[Any]:
        """Rows of one bulk statement, sent unprepared (each batch is planned for its values;
        every one is guarded by state, so running it again after a lost connection is safe)."""
        sql = self._a[name]
        return self._run(name, lambda c: c.execute(sql, params, prepare=False).fetchall())

    def job_search(
        self, match: JobMatch, limit: int = 50, before_id: int | None = None
    ) -> list[JobRecord]:
        params = match_params(match, match.states)
        params["limit"] = int(limit)
        params["before_id"] = None if before_id is None else int(before_id)
        ids = [int(row[0]) for row in self._bulk_rows("search_page", params)]
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
        params = match_params(match, acting)
        first, last = (int(v) for v in self._bulk_rows("id_range", {})[0])
        params.update(after=first, upto=last, batch=batch, channel=self.channel)
        if dry_run:
            return BulkResult(action, True, int(self._bulk_rows("bulk_count", params)[0][0]))
        name = f"bulk_{action}"

        def step(after: int, upto: int) -> tuple[int | None, int, int]:
            params.update(after=after, upto=upto)
            picked_last, picked, changed = self._bulk_rows(name, params)[0][:3]
            return (None if picked_last is None else int(picked_last)), int(picked), int(changed)

        return BulkResult(action, False, walk(first, last, batch, step))
