"""The PostgreSQL engine's maintenance family: what the leader and every worker's housekeeping
do (rescue expired leases, promote due jobs, prune, leadership, worker records, cron)."""

from __future__ import annotations

from offload.store._codec import dumps
from offload.store._contract import CronTick, RescueResult, WorkerInfo
from offload.store._totals import ENDED_KEPT
from offload.store.postgres import _insert
from offload.store.postgres._core import Conn, PostgresCore


class PostgresMaintenance(PostgresCore):
    """Maintenance operations."""

    def job_rescue_expired(self, max_crashes: int) -> RescueResult:
        params = {"max_crashes": int(max_crashes), "channel": self.channel}
        row = self._run("job_rescue_expired", lambda c: self._one(c, "job_rescue_expired", params))
        return RescueResult(int(row[0]), int(row[1]), int(row[3]))

    def job_promote_due(self) -> int:
        return int(self._scalar("job_promote_due", {"channel": self.channel}))

    def job_prune(self, dead_older_than: float) -> int:
        def body(c: Conn) -> int:
            pruned = int(self._one(c, "job_prune", {"dead_older_than": float(dead_older_than)})[0])
            c.execute(self._q["ended_prune"], {"kept": ENDED_KEPT})
            return pruned

        return self._run("job_prune", body)

    def leader_acquire(self, name: str, owner: str, ttl: float) -> bool:
        rows = self._rows("leader_acquire", {"name": name, "owner": owner, "ttl": float(ttl)})
        return bool(rows) and rows[0][0] == owner

    def leader_release(self, name: str, owner: str) -> None:
        self._exec("leader_release", {"name": name, "owner": owner})

    def worker_beat(self, info: WorkerInfo) -> None:
        params = {
            "id": info.id,
            "host": info.host,
            "pid": info.pid,
            "queues": dumps(list(info.queues)),
            "started_at": float(info.started_at),
            "running": info.running,
            "owner": info.owner,
        }
        self._exec("worker_beat", params)

    def worker_owner(self, worker_id: str) -> str | None:
        rows = self._rows("worker_owner", {"id": worker_id})
        return str(rows[0][0]) if rows and rows[0][0] is not None else None

    def worker_remove(self, worker_id: str) -> None:
        self._exec("worker_remove", {"id": worker_id})

    def worker_list(self, seen_within: float) -> list[WorkerInfo]:
        rows = self._rows("worker_list", {"seen_within": float(seen_within)})
        return [WorkerInfo(r[0], r[1], r[2], list(r[3]), r[4], r[5], r[6]) for r in rows]

    def cron_last_tick(self, name: str) -> float | None:
        rows = self._rows("cron_last_tick", {"name": name})
        return float(rows[0][0]) if rows else None

    def cron_fire(self, tick: CronTick) -> bool:
        def body(c: Conn) -> bool:
            advance = {"name": tick.name, "tick": float(tick.tick)}
            if c.execute(self._q["cron_advance"], advance).fetchone() is None:
                return False
            _insert.insert(self, c, [tick.job])
            return True

        # Retrying is safe: the tick is recorded with the job, so it fires at most once.
        return self._run("cron_fire", body, transaction=True)
