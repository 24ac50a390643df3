"""The outbox: stage jobs in the application's own database, relay them to the store.

For an application whose data lives in another database than the job store. Staging writes
a row in the application's transaction, so the job exists exactly when the data does; the relay
(`offload relay`) copies staged rows to the store at least once and marks them. Each staged job
carries a unique key, so a row relayed twice (the relay died between the two commits) is
enqueued once. The relay admits jobs like every enqueue: a blackhole rule stores a job `shed`,
and a job over a backlog bound stays staged (nothing is lost) until a later try admits it.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from offload._errors import OverloadedError
from offload.dispatch._limits import LimitSpec
from offload.store import _outbox as table
from offload.store._codec import dumps, loads
from offload.store._contract import NewJob
from offload.store._policy import JobPolicy

if TYPE_CHECKING:
    from offload.app._offload import Offload
    from offload.jobs._type import PreparedJob

log = logging.getLogger("offload.relay")

create_table = table.create_table


def stage(conn: Any, prepared: Sequence[PreparedJob]) -> list[table.Staged]:
    """Stage jobs in the caller's open transaction on its own database."""
    now = time.time()
    rows = []
    for p in prepared:
        job = p.new
        if job.scheduled_at is None and job.delay > 0:
            job = dataclasses.replace(job, scheduled_at=now + job.delay, delay=0.0)
        if job.policy is not None and job.policy.expires_in is not None:  # from the staging
            expires_at = now + job.policy.expires_in
            policy = dataclasses.replace(job.policy, expires_at=expires_at, expires_in=None)
            job = dataclasses.replace(job, policy=policy)
        key = uuid.uuid4().hex
        rows.append((key, job.kind, dumps(dataclasses.asdict(job)), now))
    return table.stage(conn, rows)


class Relay:
    """Moves staged jobs from an application database (a URL) to the app's store."""

    def __init__(self, app: Offload, source_url: str, batch: int = 500) -> None:
        self.app = app
        self.source_url = source_url
        self.batch = batch
        self.relayed = 0
        self.held = 0  # staged jobs the last batch held back (over a backlog bound)
        self.retry_after = 0.0
        self._stop = threading.Event()
        self._source: table.Source | None = None

    def source(self) -> table.Source:
        """The outbox of the application database, opened on first use."""
        if self._source is None:
            self._source = table.open_source(self.source_url)
        return self._source

    def run_once(self) -> int:
        """Relay one batch; return how many staged jobs it moved."""
        taken: list[int] = []
        refused: OverloadedError | None = None
        with self.source().transaction() as outbox:
            rows = outbox.pending(self.batch)
            if rows:
                jobs = []
                for row in rows:
                    fields = loads(row.job) if isinstance(row.job, str) else row.job
                    if isinstance(fields.get("policy"), dict):
                        fields["policy"] = JobPolicy.from_dict(fields["policy"])
                    if isinstance(fields.get("limit"), dict):  # a limit key's numbers
                        fields["limit"] = LimitSpec(**fields["limit"])
                    job = NewJob(**fields)
                    if job.unique_key is None:
                        job = dataclasses.replace(job, unique_key=f"outbox:{row.key}")
                    jobs.append(job)
                # Admitted like every enqueue (backlog bounds, blackhole rules): jobs over a
                # bound stay staged and are tried again after the refusal's retry_after.
                taken, refused = self.app.admission.admit_each(jobs)
                inserted = self.app.admit_and_store([jobs[i] for i in taken]) if taken else []
                now = time.time()
                outbox.mark(
                    [(rows[i].id, job.id) for i, job in zip(taken, inserted, strict=True)], now
                )
                outbox.prune(now - 86400.0)
        self._hold(len(rows) - len(taken), refused)
        self.relayed += len(taken)
        return len(taken)

    def _hold(self, held: int, refused: OverloadedError | None) -> None:
        """Remember that `held` staged jobs were held back by a backlog bound (for `run`); a
        warning when that starts, debug lines while it lasts."""
        level = logging.DEBUG if self.held else logging.WARNING
        self.held = held
        self.retry_after = 0.0 if refused is None or not held else refused.retry_after
        if held and refused is not None:
            log.log(
                level,
                "%d staged jobs held back in the outbox: %s; trying again in %.0fs",
                held,
                refused,
                refused.retry_after,
            )

    def pending(self) -> int:
        """How many staged jobs wait to be relayed."""
        return self.source().pending_count()

    def run(self, interval: float = 0.5) -> None:
        """Relay until `stop()`; polls every `interval` seconds when nothing is staged."""
        while not self._stop.is_set():
            try:
                moved = self.run_once()
            except Exception as exc:
                log.warning("relay failed (%s); retrying", exc)
                self.close()
                moved = 0
            if self.retry_after > 0:  # a backlog bound held staged jobs back
                self._stop.wait(max(interval, self.retry_after))
            elif moved < self.batch:
                self._stop.wait(interval)

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        if self._source is not None:
            try:
                self._source.close()
            finally:
                self._source = None
