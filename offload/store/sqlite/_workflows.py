"""The SQLite engine's workflows family (offload/store/_workflows.py), and `advance_jobs`, which
the job transitions of the other families call in their transaction when a job that may be a
workflow's step has ended. SQLite has one writer at a time, so reading a workflow's rows in the
transaction is enough to advance it alone."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from offload.store._codec import dumps, loads
from offload.store._contract import NewJob
from offload.store._policy import needs_policy
from offload.store._sql import queries
from offload.store._workflows import (
    NewWorkflow,
    Plan,
    Seen,
    StepRecord,
    WorkflowFilter,
    WorkflowIO,
    WorkflowOps,
    WorkflowRecord,
    advance,
    check_workflow,
    job_to_json,
)
from offload.store.sqlite._base import SQLiteBase


def wf_sql() -> dict[str, str]:
    return queries("sqlite", "workflows")


class _IO(WorkflowIO):
    """`advance`'s reads and writes on the connection of one transaction."""

    def __init__(self, c: sqlite3.Connection, now: float) -> None:
        self.c = c
        self.now = now
        self.q = wf_sql()

    def lock(self, ids: Sequence[int]) -> list[tuple[int, str, str, bool]]:
        rows = self.c.execute(self.q["wf_lock"], (dumps(list(ids)),)).fetchall()
        return [(int(r[0]), str(r[1]), str(r[2]), bool(r[3])) for r in rows]

    def seen(self, ids: Sequence[int]) -> dict[int, list[Seen]]:
        # One workflow at a time: a statement costs no round trip here.
        out = {}
        for wid in ids:
            rows = self.c.execute(self.q["wf_seen"], (wid,)).fetchall()
            out[wid] = [
                Seen(r[0], int(r[1]), r[2], tuple(loads(r[3]) or ()), r[4], r[5], r[6], r[7])
                for r in rows
            ]
        return out

    def specs(self, wanted: Sequence[tuple[int, str]]) -> dict[tuple[int, str], dict[str, Any]]:
        names: dict[int, list[str]] = {}
        for wid, name in wanted:
            names.setdefault(wid, []).append(name)
        out: dict[tuple[int, str], dict[str, Any]] = {}
        for wid, some in names.items():
            rows = self.c.execute(self.q["wf_specs"], (wid, dumps(some)))
            out.update(((wid, r[0]), loads(r[1])) for r in rows)
        return out

    def insert(self, jobs: Sequence[NewJob]) -> list[int]:
        from offload.store.sqlite import _jobs, _policy

        if needs_policy(jobs):
            got = _policy.insert_with_policy(self.c, jobs, lambda: self.now, _jobs.insert)
        else:
            got = _jobs.insert(self.c, jobs, self.now)
        return [i.id for i in _jobs.correlate(self.c, jobs, got)]

    def write(self, outcomes: Sequence[tuple[int, Plan, dict[str, int]]]) -> None:
        q, c = self.q, self.c
        for workflow_id, p, made in outcomes:
            for name, state, _result in p.ended:
                c.execute(q["wf_step_end"], (state, workflow_id, name))
            for name, job_id in made.items():
                c.execute(q["wf_step_made"], (job_id, workflow_id, name))
            if p.state is not None:
                c.execute(q["wf_state"], (p.state, self.now, workflow_id))


def advance_jobs(c: sqlite3.Connection, job_ids: Sequence[int], now: float) -> int:
    """Advance the workflows whose steps these jobs are (they may have ended), in the
    transaction of `c`; how many jobs that made. Jobs of no workflow cost one index look-up."""
    if not job_ids:
        return 0
    rows = c.execute(wf_sql()["wf_of_jobs"], (dumps(list(job_ids)),)).fetchall()
    if not rows:
        return 0
    return advance(_IO(c, now), [int(r[0]) for r in rows])


def reopen_job(c: sqlite3.Connection, job_id: int, now: float) -> int:
    """A step's ended job runs again (retried): its step waits for it again, and its workflow
    is advanced (a stuck saga whose undo job is retried compensates again)."""
    rows = c.execute(wf_sql()["wf_step_reopen"], (job_id,)).fetchall()
    if not rows:
        return 0
    return advance(_IO(c, now), [int(r[0]) for r in rows])


class SQLiteWorkflows(SQLiteBase, WorkflowOps):
    """The workflows family on the SQLite engine."""

    def workflow_create(self, wf: NewWorkflow) -> int:
        check_workflow(wf)
        q = wf_sql()

        def body(c: sqlite3.Connection) -> tuple[int, int]:
            now = self.now()
            wid = int(c.execute(q["wf_insert"], (wf.kind, wf.name, now, now)).fetchone()[0])
            c.executemany(
                q["wf_step_insert"],
                [
                    (
                        wid,
                        s.name,
                        i,
                        s.role,
                        dumps(list(s.depends_on)),
                        s.undo_of,
                        s.job.kind,
                        dumps(job_to_json(s.job)),
                    )
                    for i, s in enumerate(wf.steps)
                ],
            )
            return wid, advance(_IO(c, now), [wid])

        wid, made = self._tx(body)
        return self._rung(wid, made > 0)

    def workflow_get(self, workflow_id: int) -> WorkflowRecord | None:
        q = wf_sql()
        rows = self._read(q["wf_get"], (int(workflow_id),))
        if not rows:
            return None
        steps = [_step(r) for r in self._read(q["wf_steps"], (int(workflow_id),))]
        return _workflow(rows[0], steps)

    def workflow_list(self, flt: WorkflowFilter) -> list[WorkflowRecord]:
        states = None if flt.states is None else dumps(list(flt.states))
        params = (states, flt.kind, flt.before_id, int(flt.limit))
        return [_workflow(r, []) for r in self._read(wf_sql()["wf_list"], params)]

    def workflow_counts(self) -> dict[str, int]:
        return {str(s): int(n) for s, n in self._read(wf_sql()["wf_counts"])}

    def workflow_cancel(self, workflow_id: int) -> bool:
        q, jq = wf_sql(), self._q

        def body(c: sqlite3.Connection) -> tuple[bool, int]:
            now = self.now()
            row = c.execute(q["wf_cancel_request"], (now, int(workflow_id))).fetchone()
            if row is None:
                return False, 0
            if row[0] != "saga":
                c.execute(q["wf_state"], ("cancelled", now, int(workflow_id)))
            for (job_id,) in c.execute(q["wf_running_jobs"], (int(workflow_id),)).fetchall():
                if not c.execute(jq["job_cancel"], (now, job_id)).rowcount:
                    c.execute(jq["job_request_stop"], (job_id, "cancel"))
            return True, advance(_IO(c, now), [int(workflow_id)])

        cancelled, made = self._tx(body)
        return self._rung(cancelled, made > 0)

    def workflow_results(self, workflow_id: int, step: str) -> dict[str, Any]:
        rows = self._read(wf_sql()["wf_results"], (int(workflow_id), step))
        return {str(r[0]): loads(r[1]) for r in rows}

    def job_tree(self, root_id: int, limit: int = 1000) -> list[tuple[int, int | None, str, str]]:
        rows = self._read(wf_sql()["job_tree"], (int(root_id), int(limit)))
        return [(int(r[0]), r[1], str(r[2]), str(r[3])) for r in rows]

    def workflow_sweep(self, limit: int = 100) -> int:
        q = wf_sql()

        def body(c: sqlite3.Connection) -> int:
            ids = [int(r[0]) for r in c.execute(q["wf_sweep"], (int(limit),)).fetchall()]
            ids += [int(r[0]) for r in c.execute(q["wf_reopen_stuck"]).fetchall()]
            if ids:
                advance(_IO(c, self.now()), ids)
            return len(set(ids))

        stuck = self._read(q["wf_any_stuck"])
        if not stuck and not self._read(q["wf_sweep"], (1,)):  # nothing to do: no write lock
            return 0
        swept = self._tx(body)
        return self._rung(swept, swept > 0)


def _workflow(r: Sequence[Any], steps: list[StepRecord]) -> WorkflowRecord:
    return WorkflowRecord(
        int(r[0]),
        str(r[1]),
        r[2],
        str(r[3]),
        float(r[4]),
        float(r[5]),
        None if r[6] is None else float(r[6]),
        bool(r[7]),
        steps,
    )


def _step(r: Sequence[Any]) -> StepRecord:
    return StepRecord(
        str(r[0]),
        int(r[1]),
        str(r[2]),
        tuple(loads(r[3]) or ()),
        r[4],
        str(r[5]),
        str(r[6]),
        None if r[7] is None else int(r[7]),
        loads(r[8]),
    )
