"""The store operations of workflows (part of the contract): chains, groups, graphs and sagas.

A workflow is a row of its own and one row per step; each step names the steps it depends on
and holds the job it runs, made into a job only when it is due. What a workflow does next is
decided here, once for every engine (`plan`), from its steps and their jobs' states: the
engines read those rows, lock the workflow row (PostgreSQL) and apply the plan, inside the
transaction of the job transition that caused it (a completion, a failure that is final, a
cancel, a rescue). So a step's end and the jobs it unblocks commit together, and because the
plan creates a step's job only while the step has none, running it again changes nothing.
A leader duty (`workflow_sweep`) applies it to workflows whose jobs ended by another path
(bulk operations, a claim that made a job dead), as a safety net.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from offload.dispatch._limits import LimitSpec
from offload.store._policy import JobPolicy

if TYPE_CHECKING:
    from offload.store._contract import NewJob

# Workflow states. `stuck`: a saga whose undo job ended dead or cancelled (needs an operator).
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
COMPENSATING = "compensating"
COMPENSATED = "compensated"
CANCELLED = "cancelled"
STUCK = "stuck"
WORKFLOW_STATES = (RUNNING, COMPLETED, FAILED, COMPENSATING, COMPENSATED, CANCELLED, STUCK)
FINAL_WORKFLOW_STATES = (COMPLETED, FAILED, COMPENSATED, CANCELLED)
KINDS = ("chain", "group", "graph", "saga")

# Step roles and states. A step is `pending` until its job is made, `created` while its job
# has not ended, then the state its job ended in.
STEP = "step"
ON_FAILURE = "on_failure"
UNDO = "undo"
PENDING = "pending"
CREATED = "created"
ENDED = ("completed", "dead", "cancelled", "shed")  # the job states that end a step
UNSUCCESSFUL = ("dead", "cancelled", "shed")
META_KEY = "workflow"  # a step job's meta: {"workflow": [workflow id, step name]}


@dataclass(frozen=True, slots=True)
class NewStep:
    """A step to store: its name, its job, the steps it waits for, its role (`step`,
    `on_failure`: a callback run once when the workflow fails, `undo`: a saga step's
    compensation, of the step named in `undo_of`)."""

    name: str
    job: NewJob
    depends_on: tuple[str, ...] = ()
    role: str = STEP
    undo_of: str | None = None


@dataclass(frozen=True, slots=True)
class NewWorkflow:
    """A workflow to store: its kind (chain, group, graph, saga), an optional name, its steps
    in order (a saga runs its `step`s in this order)."""

    kind: str
    steps: Sequence[NewStep]
    name: str | None = None


@dataclass(frozen=True, slots=True)
class StepRecord:
    """A stored step: where it stands (`state`), its job once made, and its result once
    completed."""

    name: str
    position: int
    role: str
    depends_on: tuple[str, ...]
    undo_of: str | None
    kind: str
    state: str
    job_id: int | None
    result: Any = None


@dataclass(frozen=True, slots=True)
class WorkflowRecord:
    """A stored workflow and, when read one at a time, its steps."""

    id: int
    kind: str
    name: str | None
    state: str
    inserted_at: float
    updated_at: float
    finished_at: float | None
    cancel_requested: bool = False
    steps: list[StepRecord] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class WorkflowFilter:
    """Which workflows to list (newest first); None: any."""

    states: Sequence[str] | None = None
    kind: str | None = None
    limit: int = 50
    before_id: int | None = None


# --- the plan --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Seen:
    """A step as the plan reads it: its stored row, and its job's state and result (job_state
    None when the step has no job, or its job is gone; an engine may leave it None for a step
    that does not wait for its job, `created`, since the plan reads it for those only)."""

    name: str
    position: int
    role: str
    depends_on: tuple[str, ...]
    undo_of: str | None
    state: str
    job_id: int | None
    job_state: str | None
    job_result: Any = None


@dataclass(slots=True)
class Plan:
    """What to write: steps whose job ended (name, state, result), steps whose job to make
    now, in order, and the workflow's new state (None: unchanged)."""

    ended: list[tuple[str, str, Any]] = field(default_factory=list)
    create: list[str] = field(default_factory=list)
    state: str | None = None


def plan(kind: str, state: str, cancel_requested: bool, steps: Sequence[Seen]) -> Plan:
    """What a workflow does next, from its steps and their jobs: the one place that decides
    it, for every engine. Pure: it reads what it is given and says what to write."""
    out = Plan()
    now: dict[str, str] = {}
    for s in steps:
        current = s.state
        if current == CREATED:
            job = s.job_state
            if job is None:  # its job is gone (deleted): it cannot end any other way
                current = "cancelled"
                out.ended.append((s.name, current, None))
            elif job in ENDED:
                current = job
                out.ended.append((s.name, job, s.job_result if job == "completed" else None))
        now[s.name] = current
    main = [s for s in steps if s.role == STEP]
    failed = any(now[s.name] in UNSUCCESSFUL for s in main)
    if kind == "saga":
        new = _saga(state, cancel_requested, failed, main, steps, now, out)
    else:
        new = _graph(state, failed, main, steps, now, out)
    if new != state:
        out.state = new
    return out


def _due(s: Seen, now: dict[str, str]) -> bool:
    return now[s.name] == PENDING and all(now.get(d) == "completed" for d in s.depends_on)


def _graph(
    state: str,
    failed: bool,
    main: list[Seen],
    steps: Sequence[Seen],
    now: dict[str, str],
    out: Plan,
) -> str:
    if state != RUNNING:
        return state
    if failed:
        out.create += [s.name for s in steps if s.role == ON_FAILURE and now[s.name] == PENDING]
        return FAILED
    out.create += [s.name for s in main if _due(s, now)]
    if all(now[s.name] == "completed" for s in main):
        return COMPLETED
    return RUNNING


def _saga(
    state: str,
    cancel_requested: bool,
    failed: bool,
    main: list[Seen],
    steps: Sequence[Seen],
    now: dict[str, str],
    out: Plan,
) -> str:
    if state == RUNNING:
        if not failed and not cancel_requested:
            out.create += [s.name for s in main if _due(s, now)][:1]  # one step at a time
            if all(now[s.name] == "completed" for s in main):
                return COMPLETED
            return RUNNING
        state = COMPENSATING
    if state not in (COMPENSATING, STUCK):
        return state
    if any(now[s.name] == CREATED for s in main):
        return COMPENSATING  # a step still runs (a cancel asked it to stop): wait for its end
    undo_of = {s.undo_of: s for s in steps if s.role == UNDO}
    done = sorted((s for s in main if now[s.name] == "completed"), key=lambda s: -s.position)
    for target in done:
        undo = undo_of.get(target.name)
        if undo is None:
            continue
        got = now[undo.name]
        if got == "completed":
            continue
        if got == PENDING:
            out.create.append(undo.name)
            return COMPENSATING
        if got == CREATED:
            return COMPENSATING
        return STUCK  # dead, cancelled or shed: an operator must look
    return COMPENSATED


# --- a step's job as stored ------------------------------------------------------------------
def job_to_json(job: NewJob) -> dict[str, Any]:
    """A step's job as JSON, to make it later (as the outbox stores jobs)."""
    data = dataclasses.asdict(job)
    data.pop("args_json", None)
    return data


def job_from_json(data: dict[str, Any], workflow_id: int, step: str) -> NewJob:
    """A step's stored job, made into the `NewJob` to insert, marked as the workflow's step."""
    from offload.store._contract import NewJob

    fields = dict(data)
    if fields.get("policy") is not None:
        fields["policy"] = JobPolicy.from_dict(fields["policy"])
    if fields.get("limit") is not None:
        fields["limit"] = LimitSpec(**fields["limit"])
    fields["meta"] = {**(fields.get("meta") or {}), META_KEY: [workflow_id, step]}
    return NewJob(**fields)


def step_of(meta: dict[str, Any] | None) -> tuple[int, str] | None:
    """The (workflow id, step name) a job's meta marks it as, or None."""
    if not meta:
        return None
    mark = meta.get(META_KEY)
    if isinstance(mark, list) and len(mark) == 2:
        return int(mark[0]), str(mark[1])
    return None


def check_workflow(wf: NewWorkflow) -> None:
    """ValueError when a workflow's steps do not form one: names unique, dependencies named
    and without cycles, undo steps naming a step."""
    if wf.kind not in KINDS:
        raise ValueError(f"a workflow's kind is one of {', '.join(KINDS)}, not {wf.kind!r}")
    names = [s.name for s in wf.steps]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"step names must be unique; given twice: {', '.join(twice)}")
    known = set(names)
    for s in wf.steps:
        for d in s.depends_on:
            if d not in known:
                raise ValueError(f"step {s.name!r} depends on {d!r}, which is no step of it")
        if s.role == UNDO and s.undo_of not in known:
            raise ValueError(f"undo step {s.name!r} names no step it undoes")
    if not any(s.role == STEP for s in wf.steps):
        raise ValueError("a workflow needs at least one step")
    deps = {s.name: s.depends_on for s in wf.steps}
    seen: dict[str, int] = {}

    def visit(n: str, path: tuple[str, ...]) -> None:
        if seen.get(n) == 2:
            return
        if seen.get(n) == 1:
            raise ValueError(f"steps depend on each other in a cycle: {' -> '.join(path)}")
        seen[n] = 1
        for d in deps[n]:
            visit(d, (*path, d))
        seen[n] = 2

    for n in names:
        visit(n, (n,))


class WorkflowOps(abc.ABC):
    """The part of the store contract for workflows."""

    @abc.abstractmethod
    def workflow_create(self, wf: NewWorkflow) -> int:
        """Store a workflow and its steps, and make the jobs of the steps due at once, in one
        transaction; its id. ValueError when its steps do not form one (`check_workflow`)."""

    @abc.abstractmethod
    def workflow_get(self, workflow_id: int) -> WorkflowRecord | None:
        """A workflow with its steps, or None."""

    @abc.abstractmethod
    def workflow_list(self, flt: WorkflowFilter) -> list[WorkflowRecord]:
        """Workflows matching a filter, newest first, without their steps."""

    @abc.abstractmethod
    def workflow_counts(self) -> dict[str, int]:
        """How many workflows are in each state (states with none are absent)."""

    @abc.abstractmethod
    def workflow_cancel(self, workflow_id: int) -> bool:
        """Cancel a running workflow: its queued step jobs are cancelled and its running ones
        asked to stop; a saga compensates (the undo jobs of its completed steps run). False
        when it is not running."""

    @abc.abstractmethod
    def workflow_results(self, workflow_id: int, step: str) -> dict[str, Any]:
        """The results of the completed steps that `step` depends on, by step name."""

    @abc.abstractmethod
    def job_tree(self, root_id: int, limit: int = 1000) -> list[tuple[int, int | None, str, str]]:
        """A root job and the jobs it caused (id, parent id, kind, state), in id order."""

    @abc.abstractmethod
    def workflow_sweep(self, limit: int = 100) -> int:
        """Advance workflows with a step whose job ended without advancing them (ended by a
        path that does not, or before a crash); how many were advanced."""


class WorkflowIO(abc.ABC):
    """What `advance` needs of an engine, on the connection of the transaction it runs in.
    Each call covers every workflow of one advance, so that an acknowledgement of many steps
    (of many workflows) costs a few statements, not a few per workflow."""

    @abc.abstractmethod
    def lock(self, ids: Sequence[int]) -> list[tuple[int, str, str, bool]]:
        """Lock these workflow rows in id order (PostgreSQL: FOR UPDATE): their id, kind,
        state and whether a cancel was asked for."""

    @abc.abstractmethod
    def seen(self, ids: Sequence[int]) -> dict[int, list[Seen]]:
        """These workflows' steps with their jobs' states and results, in position order,
        by workflow id."""

    @abc.abstractmethod
    def specs(self, wanted: Sequence[tuple[int, str]]) -> dict[tuple[int, str], dict[str, Any]]:
        """The stored jobs of these (workflow id, step name) steps."""

    @abc.abstractmethod
    def insert(self, jobs: Sequence[NewJob]) -> list[int]:
        """Insert jobs as the engine's enqueue does; their ids."""

    @abc.abstractmethod
    def write(self, outcomes: Sequence[tuple[int, Plan, dict[str, int]]]) -> None:
        """Store plans' outcomes (workflow id, plan, the jobs made by step name): ended steps,
        steps whose job was made, new states."""


def advance(io: WorkflowIO, ids: Sequence[int]) -> int:
    """Apply the plan of each of these workflows (locked in id order, so that transactions
    advancing several never deadlock); how many jobs it made. The jobs of all their due steps
    are made by one insert."""
    locked = io.lock(sorted(set(ids)))
    if not locked:
        return 0
    seen = io.seen([wid for wid, *_ in locked])
    plans: list[tuple[int, Plan]] = []
    for wid, kind, state, cancel in locked:
        p = plan(kind, state, cancel, seen.get(wid, []))
        if p.ended or p.create or p.state is not None:
            plans.append((wid, p))
    wanted = [(wid, name) for wid, p in plans for name in p.create]
    made: dict[tuple[int, str], int] = {}
    if wanted:
        specs = io.specs(wanted)
        jobs = [job_from_json(specs[w], w[0], w[1]) for w in wanted]
        made = dict(zip(wanted, io.insert(jobs), strict=True))
    if plans:
        io.write([(wid, p, {n: made[(wid, n)] for n in p.create}) for wid, p in plans])
    return len(made)
