"""The SQLite engine's maintenance family: the leader's duties (rescue, promote, prune, cron),
leadership and the registry of workers.

Promotion tags jobs through the dispatch family's functions, the pruner keeps what deleted
rows counted through the totals family's, and a cron tick records itself and enqueues its job
as two operations on one store transaction.
"""

from __future__ import annotations

import sqlite3
from typing import cast

from offload.store._codec import dumps, error_entry, loads
from offload.store._contract import CronTick, RescueResult, WorkerInfo
from offload.store._totals import ENDED_KEPT
from offload.store.sqlite import _dispatch as dispatch
from offload.store.sqlite import _totals as totals
from offload.store.sqlite import _workflows as workflows
from offload.store.sqlite._base import SQLiteBase


class SQLiteMaintenance(SQLiteBase):
    """The maintenance family on the SQLite engine."""

    def job_rescue_expired(self, max_crashes: int) -> RescueResult:
        q = self._q

        def body(c: sqlite3.Connection) -> RescueResult:
            now = self.now()
            requeued = dead = uncharged = 0
            ended: list[int] = []
            for job_id, delivery, crashes, _attempt, unstarted in c.execute(
                q["job_rescue_select"], (now,)
            ).fetchall():
                if unstarted:  # held, its start never recorded: no crash to charge
                    n = c.execute(q["job_rescue_unstarted"], (now, job_id)).rowcount
                    requeued += n
                    uncharged += n
                elif delivery == "at_most_once":
                    entry = error_entry(0, now, "abandoned", "", "crash")
                    dead += c.execute(q["job_rescue_dead"], (now, entry, job_id)).rowcount
                    ended.append(job_id)
                elif crashes + 1 >= max_crashes:
                    message = (
                        f"abandoned: its worker was lost {crashes + 1} times while running it "
                        "(a job that crashes its worker is stopped here)"
                    )
                    entry = error_entry(0, now, message, "", "crash")
                    dead += c.execute(q["job_rescue_dead"], (now, entry, job_id)).rowcount
                    ended.append(job_id)
                else:
                    entry = error_entry(0, now, "worker lost: lease expired", "", "crash")
                    requeued += c.execute(q["job_rescue_requeue"], (now, entry, job_id)).rowcount
            if requeued:
                c.execute(q["counter_add"], ("rescued", requeued))
            if dead:
                c.execute(q["counter_add"], ("abandoned", dead))
                workflows.advance_jobs(c, ended, now)  # dead workflows' steps
            return RescueResult(requeued, dead, uncharged)

        result = self._tx(body)
        return self._rung(result, result.requeued > 0)

    def job_promote_due(self) -> int:
        next_due = self._read(self._q["job_next_due"])[0][0]
        if next_due is None or next_due > self.now():
            return 0
        promoted = self._tx(lambda c: dispatch.promote(c, self.now()))
        return self._rung(promoted, promoted > 0)

    def job_prune(self, dead_older_than: float) -> int:
        q = self._q

        def body(c: sqlite3.Connection) -> int:
            now = self.now()
            gone = c.execute(q["job_prune_completed"], (now,)).fetchall()
            dispatch.prune_flows(c)
            gone += c.execute(q["job_prune_final"], (now - dead_older_than,)).fetchall()
            totals.keep(c, gone)  # what they counted stays in the totals
            c.execute(q["ended_prune"], (now - ENDED_KEPT,))
            return len(gone)

        return self._tx(body)

    # --- leadership, workers, cron -----------------------------------------------------
    def leader_acquire(self, name: str, owner: str, ttl: float) -> bool:
        sql = self._q["leader_acquire"]

        def body(c: sqlite3.Connection) -> bool:
            now = self.now()
            row = c.execute(sql, (name, owner, now + ttl, now)).fetchone()
            return row is not None and row[0] == owner

        return self._tx(body)

    def leader_release(self, name: str, owner: str) -> None:
        sql = self._q["leader_release"]
        self._tx(lambda c: c.execute(sql, (name, owner)))

    def worker_beat(self, info: WorkerInfo) -> None:
        sql = self._q["worker_beat"]
        row = (
            info.id,
            info.host,
            info.pid,
            dumps(info.queues),
            info.started_at,
            self.now(),
            info.running,
            info.owner,
        )
        self._tx(lambda c: c.execute(sql, row))

    def worker_owner(self, worker_id: str) -> str | None:
        rows = self._read(self._q["worker_owner"], (worker_id,))
        return str(rows[0][0]) if rows and rows[0][0] is not None else None

    def worker_remove(self, worker_id: str) -> None:
        sql = self._q["worker_remove"]
        self._tx(lambda c: c.execute(sql, (worker_id,)))

    def worker_list(self, seen_within: float) -> list[WorkerInfo]:
        rows = self._read(self._q["worker_list"], (self.now() - seen_within,))
        return [WorkerInfo(r[0], r[1], r[2], loads(r[3]), r[4], r[5], r[6]) for r in rows]

    def cron_last_tick(self, name: str) -> float | None:
        rows = self._read(self._q["cron_last_tick"], (name,))
        return float(rows[0][0]) if rows else None

    def cron_fire(self, tick: CronTick) -> bool:
        sql = self._q["cron_advance"]
        with self.transaction() as tx:
            ex = cast(SQLiteMaintenance, tx)
            if ex._tx(lambda c: c.execute(sql, (tick.name, tick.tick)).fetchone()) is None:
                return False  # fired already (by this leader or another)
            tx.job_insert_many([tick.job])
            return True
