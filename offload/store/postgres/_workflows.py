"""The PostgreSQL engine's workflows family (offload/store/_workflows.py), and `advance_jobs`,
which the job transitions of the other families call in their transaction when a job that may
be a workflow's step has ended. The transaction locks the workflow rows it advances (in id
order) before reading their steps, so that two workers ending the last two members of a group
at the same moment make its callback once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from offload.store._codec import dumps
from offload.store._contract import NewJob
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
from offload.store.postgres import _insert
from offload.store.postgres._core import Conn, PostgresCore


class _IO(WorkflowIO):
    """`advance`'s reads and writes on the connection of one transaction: one statement per
    call whatever the number of workflows, and the writes fetch nothing, so that in the
    pipelined cycle of an acknowledgement (`_jobs.py`) they wait for no round trip."""

    def __init__(
        self, ex: PostgresCore, c: Conn, locked: list[tuple[int, str, str, bool]] | None = None
    ) -> None:
        self.ex = ex
        self.c = c
        self.q = ex._q
        self.locked = locked  # rows its caller locked already (`advance_jobs`)

    def lock(self, ids: Sequence[int]) -> list[tuple[int, str, str, bool]]:
        if self.locked is not None:
            wanted = set(ids)
            return [r for r in self.locked if r[0] in wanted]
        return _locked(self.c.execute(self.q["wf_lock"], {"ids": list(ids)}).fetchall())

    def seen(self, ids: Sequence[int]) -> dict[int, list[Seen]]:
        out: dict[int, list[Seen]] = {}
        for r in self.c.execute(self.q["wf_seen"], {"ids": list(ids)}).fetchall():
            out.setdefault(int(r[0]), []).append(
                Seen(r[1], int(r[2]), r[3], tuple(r[4] or ()), r[5], r[6], r[7], r[8])
            )
        return out

    def specs(self, wanted: Sequence[tuple[int, str]]) -> dict[tuple[int, str], dict[str, Any]]:
        params = {"ids": [w for w, _ in wanted], "names": [n for _, n in wanted]}
        rows = self.c.execute(self.q["wf_specs"], params).fetchall()
        return {(int(r[0]), r[1]): r[2] for r in rows}

    def insert(self, jobs: Sequence[NewJob]) -> list[int]:
        return [i.id for i in _insert.insert(self.ex, self.c, jobs)]

    def write(self, outcomes: Sequence[tuple[int, Plan, dict[str, int]]]) -> None:
        q, c = self.q, self.c
        ended = [(wid, name, state) for wid, p, _ in outcomes for name, state, _ in p.ended]
        if ended:
            ids, names, states = (list(x) for x in zip(*ended, strict=True))
            c.execute(q["wf_step_end"], {"ids": ids, "names": names, "states": states})
        made = [(wid, name, job_id) for wid, _, m in outcomes for name, job_id in m.items()]
        if made:
            ids, names, jobs = (list(x) for x in zip(*made, strict=True))
            c.execute(q["wf_step_made"], {"ids": ids, "names": names, "job_ids": jobs})
        moved = [(wid, p.state) for wid, p, _ in outcomes if p.state is not None]
        if moved:
            ids, states = (list(x) for x in zip(*moved, strict=True))
            c.execute(q["wf_state"], {"ids": ids, "states": states})


def _locked(rows: Sequence[Any]) -> list[tuple[int, str, str, bool]]:
    return [(int(r[0]), str(r[1]), str(r[2]), bool(r[3])) for r in rows]


def advance_jobs(ex: PostgresCore, c: Conn, job_ids: Sequence[int]) -> int:
    """Advance the workflows whose steps these jobs are (they may have ended), in the
    transaction of `c`; how many jobs that made. Jobs of no workflow cost one index look-up:
    the statement that finds their workflows locks them too."""
    if not job_ids:
        return 0
    locked = _locked(c.execute(ex._q["wf_lock_of_jobs"], {"ids": list(job_ids)}).fetchall())
    if not locked:
        return 0
    return advance(_IO(ex, c, locked), [wid for wid, *_ in locked])


def reopen_job(ex: PostgresCore, c: Conn, job_id: int) -> int:
    """A step's ended job runs again (retried): its step waits for it again, and its workflow
    is advanced (a stuck saga whose undo job is retried compensates again)."""
    rows = c.execute(ex._q["wf_step_reopen"], {"id": int(job_id)}).fetchall()
    if not rows:
        return 0
    return advance(_IO(ex, c), [int(r[0]) for r in rows])


class PostgresWorkflows(PostgresCore, WorkflowOps):
    """The workflows family on the PostgreSQL engine."""

    def workflow_create(self, wf: NewWorkflow) -> int:
        check_workflow(wf)
        q = self._q

        def body(c: Conn) -> int:
            wid = int(c.execute(q["wf_insert"], {"kind": wf.kind, "name": wf.name}).fetchone()[0])  # type: ignore[index]
            c.cursor().executemany(
                q["wf_step_insert"],
                [
                    {
                        "workflow_id": wid,
                        "name": s.name,
                        "position": i,
                        "role": s.role,
                        "depends_on": dumps(list(s.depends_on)),
                        "undo_of": s.undo_of,
                        "kind": s.job.kind,
                        "spec": dumps(job_to_json(s.job)),
                    }
                    for i, s in enumerate(wf.steps)
                ],
            )
            advance(_IO(self, c), [wid])
            return wid

        return self._run("workflow_create", body, idempotent=False, transaction=True)

    def workflow_get(self, workflow_id: int) -> WorkflowRecord | None:
        rows = self._rows("wf_get", {"id": int(workflow_id)})
        if not rows:
            return None
        steps = [_step(r) for r in self._rows("wf_steps", {"id": int(workflow_id)})]
        return _workflow(rows[0], steps)

    def workflow_list(self, flt: WorkflowFilter) -> list[WorkflowRecord]:
        params = {
            "states": None if flt.states is None else list(flt.states),
            "kind": flt.kind,
            "before": flt.before_id,
            "limit": int(flt.limit),
        }
        return [_workflow(r, []) for r in self._rows("wf_list", params)]

    def workflow_counts(self) -> dict[str, int]:
        return {str(s): int(n) for s, n in self._rows("wf_counts")}

    def workflow_cancel(self, workflow_id: int) -> bool:
        q = self._q
        wid = int(workflow_id)

        def body(c: Conn) -> bool:
            # The step jobs first, then the workflow row: the order an acknowledgement locks
            # them in (its job, then its workflow), so the two never wait on each other.
            jobs = [int(r[0]) for r in c.execute(q["wf_running_jobs"], {"id": wid}).fetchall()]
            row = c.execute(q["wf_get"], {"id": wid}).fetchone()
            if row is None or row[3] != "running":
                return False
            for job_id in jobs:
                if not c.execute(q["job_cancel"], {"id": job_id}).rowcount:
                    c.execute(q["job_request_stop"], {"id": job_id, "request": "cancel"})
            got = c.execute(q["wf_cancel_request"], {"id": wid}).fetchone()
            if got is None:
                return False
            if got[0] != "saga":
                c.execute(q["wf_state"], {"states": ["cancelled"], "ids": [wid]})
            advance(_IO(self, c), [wid])
            return True

        return bool(self._run("workflow_cancel", body, idempotent=False, transaction=True))

    def workflow_results(self, workflow_id: int, step: str) -> dict[str, Any]:
        rows = self._rows("wf_results", {"id": int(workflow_id), "step": step})
        return {str(r[0]): r[1] for r in rows}

    def job_tree(self, root_id: int, limit: int = 1000) -> list[tuple[int, int | None, str, str]]:
        rows = self._rows("job_tree", {"id": int(root_id), "limit": int(limit)})
        return [(int(r[0]), r[1], str(r[2]), str(r[3])) for r in rows]

    def workflow_sweep(self, limit: int = 100) -> int:
        stuck = self._rows("wf_any_stuck")
        if not stuck and not self._rows("wf_sweep", {"limit": 1}):
            return 0

        def body(c: Conn) -> int:
            ids = [int(r[0]) for r in c.execute(self._q["wf_sweep"], {"limit": int(limit)})]
            ids += [int(r[0]) for r in c.execute(self._q["wf_reopen_stuck"]).fetchall()]
            if ids:
                advance(_IO(self, c), ids)
            return len(set(ids))

        return int(self._run("workflow_sweep", body, idempotent=False, transaction=True))


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
        tuple(r[3] or ()),
        r[4],
        str(r[5]),
        str(r[6]),
        None if r[7] is None else int(r[7]),
        r[8],
    )
