"""Workflows as the application makes them: chains, groups, graphs and sagas of prepared jobs
(offload/store/_workflows.py stores them and decides what runs next), and the handle that reads
one back (`app.workflows.get(id)`)."""

from __future__ import annotations

import abc
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from offload._errors import ConfigurationError, ResultTimeoutError, WorkflowNotFoundError
from offload._time import clamped
from offload.app._context import causes
from offload.jobs._step import Step
from offload.jobs._type import PreparedJob
from offload.store._contract import joined
from offload.store._workflows import (
    FINAL_WORKFLOW_STATES,
    ON_FAILURE,
    UNDO,
    NewStep,
    NewWorkflow,
    StepRecord,
    WorkflowFilter,
    WorkflowRecord,
    check_workflow,
)

if TYPE_CHECKING:
    from offload.app._offload import Offload

_SETTLED = (*FINAL_WORKFLOW_STATES, "stuck")


def _prepared(job: object, what: str) -> PreparedJob:
    if not isinstance(job, PreparedJob):
        raise ConfigurationError(f"{what} is a job made by job_type.prepare(...), got {job!r}")
    return job


class _Names:
    """Step names from job type names: `charge`, then `charge.2`, `charge.3` ..."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def take(self, wanted: str | None, kind: str) -> str:
        if wanted is not None:
            if not isinstance(wanted, str) or not wanted:
                raise ConfigurationError(f"a step's name is non-empty text, got {wanted!r}")
            if wanted in self.used:
                raise ConfigurationError(f"two steps are named {wanted!r}; names are unique")
            self.used.add(wanted)
            return wanted
        name, n = kind, 1
        while name in self.used:
            n += 1
            name = f"{kind}.{n}"
        self.used.add(name)
        return name


class _Builder(abc.ABC):
    """What every kind of workflow shares: its app, and how it is stored."""

    kind = "graph"

    def __init__(self, app: Offload, name: str | None) -> None:
        self.app = app
        self.name = name

    @abc.abstractmethod
    def steps(self) -> list[NewStep]:
        """The workflow's steps as they are stored."""

    def build(self) -> NewWorkflow:
        wf = NewWorkflow(self.kind, self.steps(), self.name)
        try:
            check_workflow(wf)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        return wf

    def enqueue(self, *, connection: Any = None) -> WorkflowHandle:
        """Store the workflow and the jobs of its first steps in one transaction (its own,
        or a store transaction `tx` from `app.transaction()`); it runs from there."""
        wf = self.build()
        for s in wf.steps:
            self.app.job_type(s.job.kind)  # declared in this app
        ids = causes(self.app)
        if ids is not None:  # enqueued by a running job: its steps' jobs carry its ids
            parent, root = ids
            steps = [
                replace(s, job=replace(s.job, parent_id=parent, root_id=root)) for s in wf.steps
            ]
            wf = replace(wf, steps=steps)
        store = self.app.store
        executor = store if connection is None else joined(store, connection)
        if executor is None:
            raise ConfigurationError(
                "a workflow is enqueued in a store transaction: "
                "`with app.transaction() as tx: ....enqueue(connection=tx)`"
            )
        handle = WorkflowHandle(self.app, executor.workflow_create(wf))
        if connection is None and self.app.after_enqueue is not None:
            self.app.after_enqueue([])  # committed: offload.testing's inline mode runs it
        return handle

    async def enqueue_async(self) -> WorkflowHandle:
        """`enqueue` for async code."""
        return await self.app.bridge(self.enqueue)


class Chain(_Builder):
    """Jobs that run one after the other (`app.chain(a.prepare(...), b.prepare(...))`)."""

    kind = "chain"

    def __init__(self, app: Offload, jobs: Sequence[PreparedJob], name: str | None) -> None:
        super().__init__(app, name)
        self.jobs = [_prepared(j, "a chain's link") for j in jobs]
        if not self.jobs:
            raise ConfigurationError("a chain needs at least one job")

    def steps(self) -> list[NewStep]:
        names = _Names()
        out: list[NewStep] = []
        for j in self.jobs:
            after = (out[-1].name,) if out else ()
            out.append(NewStep(names.take(None, j.new.kind), j.new, after))
        return out


class Group(_Builder):
    """Jobs that run side by side, then `then` once when all have completed, or `on_failure`
    once when any ends dead or cancelled."""

    kind = "group"

    def __init__(
        self,
        app: Offload,
        jobs: Iterable[PreparedJob],
        then: PreparedJob | None,
        on_failure: PreparedJob | None,
        name: str | None,
    ) -> None:
        super().__init__(app, name)
        self.jobs = [_prepared(j, "a group's member") for j in jobs]
        if not self.jobs:
            raise ConfigurationError("a group needs at least one job")
        self.then = None if then is None else _prepared(then, "then=")
        self.on_failure = None if on_failure is None else _prepared(on_failure, "on_failure=")

    def steps(self) -> list[NewStep]:
        names = _Names()
        out = [NewStep(names.take(None, j.new.kind), j.new) for j in self.jobs]
        members = tuple(s.name for s in out)
        if self.then is not None:
            out.append(NewStep(names.take("then", ""), self.then.new, members))
        if self.on_failure is not None:
            out.append(
                NewStep(names.take("on_failure", ""), self.on_failure.new, members, ON_FAILURE)
            )
        return out


class Workflow(_Builder):
    """A graph of named steps, each started once the steps it `depends_on` have completed:
    `wf = app.workflow(); wf.step("a", a.prepare()); wf.step("b", b.prepare(),
    depends_on=["a"]); wf.enqueue()`."""

    kind = "graph"

    def __init__(self, app: Offload, name: str | None) -> None:
        super().__init__(app, name)
        self._steps: list[NewStep] = []
        self._names = _Names()
        self._on_failure: PreparedJob | None = None

    def step(self, name: str, job: PreparedJob, depends_on: Iterable[str] | str = ()) -> Workflow:
        """Add a step named `name` that runs `job` once the steps named in `depends_on` have
        completed (none: at once); returns the workflow, so that calls chain."""
        _prepared(job, f"step {name!r}'s job")
        deps = (depends_on,) if isinstance(depends_on, str) else tuple(depends_on)
        self._steps.append(NewStep(self._names.take(name, ""), job.new, deps))
        return self

    def on_failure(self, job: PreparedJob) -> Workflow:
        """A job to run once if any step ends dead or cancelled."""
        self._on_failure = _prepared(job, "on_failure")
        return self

    def steps(self) -> list[NewStep]:
        out = list(self._steps)
        if self._on_failure is not None:
            every = tuple(s.name for s in out)
            out.append(NewStep("on_failure", self._on_failure.new, every, ON_FAILURE))
        return out


class Saga(_Builder):
    """Steps run in order; when one ends dead or cancelled, or the saga is cancelled, the undo
    jobs of the steps that had completed run one after the other, last step first."""

    kind = "saga"

    def __init__(self, app: Offload, steps: Iterable[Step], name: str | None) -> None:
        super().__init__(app, name)
        self._given = list(steps)
        for s in self._given:
            if not isinstance(s, Step):
                raise ConfigurationError(
                    f"a saga's steps are offload.Step(job.prepare(...), undo=...), got {s!r}"
                )
        if not self._given:
            raise ConfigurationError("a saga needs at least one step")

    def steps(self) -> list[NewStep]:
        names = _Names()
        out: list[NewStep] = []
        undos: list[NewStep] = []
        for s in self._given:
            name = names.take(s.name, s.action.new.kind)
            after = (out[-1].name,) if out else ()
            out.append(NewStep(name, s.action.new, after))
            if s.undo is not None:
                undo = names.take(f"undo:{name}", "")
                undos.append(NewStep(undo, s.undo.new, (name,), UNDO, name))
        return out + undos


class WorkflowHandle:
    """A stored workflow: its state, its steps (each with its job's id once made) and their
    results; `wait()` for it to settle, `cancel()` it."""

    def __init__(self, app: Offload, workflow_id: int) -> None:
        self.app = app
        self.id = workflow_id
        self._record: WorkflowRecord | None = None

    def __repr__(self) -> str:
        state = self._record.state if self._record else "?"
        return f"<Workflow {self.id} {state}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WorkflowHandle) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def refresh(self) -> WorkflowHandle:
        """Read the workflow and its steps from the store."""
        record = self.app.store.workflow_get(self.id)
        if record is None:
            raise WorkflowNotFoundError(f"workflow {self.id} does not exist")
        self._record = record
        return self

    @property
    def record(self) -> WorkflowRecord:
        if self._record is None:
            self.refresh()
        assert self._record is not None
        return self._record

    @property
    def state(self) -> str:
        """running, completed, failed, compensating, compensated, cancelled or stuck."""
        return self.record.state

    @property
    def kind(self) -> str:
        return self.record.kind

    @property
    def name(self) -> str | None:
        return self.record.name

    @property
    def steps(self) -> list[StepRecord]:
        return self.record.steps

    @property
    def inserted_at(self) -> datetime:
        return clamped(self.record.inserted_at)

    @property
    def finished_at(self) -> datetime | None:
        at = self.record.finished_at
        return None if at is None else clamped(at)

    def step(self, name: str) -> StepRecord:
        """One step by name (KeyError when there is none)."""
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(f"workflow {self.id} has no step {name!r}")

    def results(self) -> dict[str, Any]:
        """The results of the completed steps, by name."""
        return {s.name: s.result for s in self.steps if s.state == "completed"}

    def wait(self, timeout: float | None = None) -> str:
        """Wait until the workflow is completed, failed, compensated, cancelled or stuck; its
        state. ResultTimeoutError when `timeout` seconds pass first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.005
        while True:
            state = self.refresh().state
            if state in _SETTLED:
                return state
            if deadline is not None and time.monotonic() >= deadline:
                raise ResultTimeoutError(f"workflow {self.id} is still {state} after {timeout}s")
            time.sleep(pause)
            pause = min(pause * 1.5, 0.1)

    def cancel(self) -> bool:
        """Cancel the workflow (a saga compensates); False when it is not running."""
        done = self.app.store.workflow_cancel(self.id)
        self._record = None
        return done

    def as_dict(self) -> dict[str, Any]:
        """For JSON: the workflow and its steps."""
        r = self.record
        return {
            "id": r.id,
            "kind": r.kind,
            "name": r.name,
            "state": r.state,
            "inserted_at": clamped(r.inserted_at).isoformat(),
            "finished_at": None if r.finished_at is None else clamped(r.finished_at).isoformat(),
            "steps": [
                {
                    "name": s.name,
                    "role": s.role,
                    "kind": s.kind,
                    "depends_on": list(s.depends_on),
                    "undo_of": s.undo_of,
                    "state": s.state,
                    "job_id": s.job_id,
                    "result": s.result,
                }
                for s in r.steps
            ],
        }


class Workflows:
    """The application's workflows: `app.workflows.get(id)`, `.list(...)`, `.counts()`."""

    def __init__(self, app: Offload) -> None:
        self.app = app

    def get(self, workflow_id: int) -> WorkflowHandle:
        """A workflow by id (WorkflowNotFoundError when there is none)."""
        return WorkflowHandle(self.app, int(workflow_id)).refresh()

    def list(
        self,
        state: str | Sequence[str] | None = None,
        kind: str | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[WorkflowHandle]:
        """Workflows newest first, by state(s) and kind (steps are read by `refresh()`)."""
        states = [state] if isinstance(state, str) else state
        flt = WorkflowFilter(states, kind, int(limit), before_id)
        out = []
        for r in self.app.store.workflow_list(flt):
            h = WorkflowHandle(self.app, r.id)
            h._record = r
            out.append(h)
        return out

    def counts(self) -> dict[str, int]:
        """How many workflows are in each state."""
        return self.app.store.workflow_counts()
