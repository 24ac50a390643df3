"""The PostgreSQL engine's job search and bulk retry, cancel and discard (mixed into
PostgresStore).

A bulk operation walks the matching jobs by id in batches: each batch is one statement that
picks its ids and changes them (autocommit, so each batch commits on its own and holds its
row locks for that statement only). Every statement is sent unprepared, so the server plans it
for the filters at hand rather than with a generic plan (offload/store/_admin.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from offload.store._admin import (
    BATCH,
    AdminOps,
    BulkResult,
    JobMatch,
    check_action,
    check_batch,
    walk,
)
from offload.store._sql import queries

if TYPE_CHECKING:
    import psycopg

    from offload.store._contract import JobRecord

T = TypeVar("T")


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


class PostgresAdmin(AdminOps):
    """Search and bulk operations on top of the PostgreSQL engine's pool and statement runner."""

    if TYPE_CHECKING:
        channel: str

        def _expand(self, text: str) -> str: ...
        def _run(
            self,
            what: str,
            body: Callable[[psycopg.Connection[Any]], T],
            *,
            idempotent: bool = True,
            transaction: bool = False,
        ) -> T: ...
        def job_get(self, job_id: int) -> JobRecord | None: ...

    @property
    def _a(self) -> dict[str, str]:
        cached: dict[str, str] | None = getattr(self, "_admin_queries", None)
        if cached is None:
            named = queries("postgres", "admin")
            match = named["match"]
            cached = {k: self._expand(v.replace("{match}", match)) for k, v in named.items()}
            self._admin_queries = cached
        return cached

    def _admin_rows(self, name: str, params: dict[str, Any]) -> list[Any]:
        """Rows of one admin statement, sent unprepared (each batch is planned for its values;
        every one is guarded by state, so running it again after a lost connection is safe)."""
        sql = self._a[name]
        return self._run(name, lambda c: c.execute(sql, params, prepare=False).fetchall())

    def job_search(
        self, match: JobMatch, limit: int = 50, before_id: int | None = None
    ) -> list[JobRecord]:
        params = match_params(match, match.states)
        params["limit"] = int(limit)
        params["before_id"] = None if before_id is None else int(before_id)
        ids = [int(row[0]) for row in self._admin_rows("search_page", params)]
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
        first, last = (int(v) for v in self._admin_rows("id_range", {})[0])
        params.update(after=first, upto=last, batch=batch, channel=self.channel)
        if dry_run:
            return BulkResult(action, True, int(self._admin_rows("bulk_count", params)[0][0]))
        name = f"bulk_{action}"

        def step(after: int, upto: int) -> tuple[int | None, int, int]:
            params.update(after=after, upto=upto)
            picked_last, picked, changed = self._admin_rows(name, params)[0][:3]
            return (None if picked_last is None else int(picked_last)), int(picked), int(changed)

        return BulkResult(action, False, walk(first, last, batch, step))
