"""The store operations of pausing queues and job types at run time (part of the contract).

`Store` inherits these; each engine implements them in its `_pauses.py` mixin with the SQL of
its `pauses.sql`. A paused queue or kind keeps its jobs queued: workers read the paused set (one
small table) at most twice a second and leave paused queues out of their claims and paused kinds
out through a variant of the claim used only while some kind is paused (`ClaimParams.skip_kinds`),
so the claim of a store with nothing paused is unchanged. Pausing also asks the running jobs of
that queue or kind to stop (`stop_request = 'pause'`) in the same transaction; resuming takes
back the requests not yet acted on, of jobs that nothing else paused.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from dataclasses import dataclass

from offload._text import name_problem, shown

QUEUE = "queue"
KIND = "kind"
SCOPES = (QUEUE, KIND)
MAX_NAME = 200  # characters of a queue or kind name, as the API and CLI accept them
MAX_REASON = 1000


@dataclass(frozen=True, slots=True)
class Pause:
    """A paused queue or kind: `scope` 'queue' or 'kind', its name, who paused it (free text,
    '' when unknown), when (the store's clock) and why ('' when not given)."""

    scope: str
    name: str
    paused_by: str
    paused_at: float
    reason: str


@dataclass(frozen=True, slots=True)
class PauseAdded:
    """What `pause_add` did: the pause as stored, whether it is new (False: it was paused
    already and is left as it was), and how many running jobs were asked to stop."""

    pause: Pause
    new: bool
    stopping: int


@dataclass(frozen=True, slots=True)
class Paused:
    """The paused names by scope, as a worker uses them to shape its claims."""

    queues: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()

    @classmethod
    def of(cls, pauses: Iterable[Pause]) -> Paused:
        listed = list(pauses)
        return cls(
            frozenset(p.name for p in listed if p.scope == QUEUE),
            frozenset(p.name for p in listed if p.scope == KIND),
        )


def check_pause(scope: str, name: str, reason: str = "") -> None:
    """Raise ValueError naming the problem when a pause's scope, name or reason is not one the
    store accepts."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be 'queue' or 'kind', not {scope!r}")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a {scope} name must be non-empty text")
    if len(name) > MAX_NAME:
        raise ValueError(f"a {scope} name is at most {MAX_NAME} characters, not {len(name)}")
    problem = name_problem(name, MAX_NAME)  # the rule every queue and job type name follows
    if problem is not None:
        raise ValueError(f"the {scope} name {shown(name)} {problem}")
    if "\x00" in reason:
        raise ValueError("a reason must not contain NUL characters")
    if len(reason) > MAX_REASON:
        raise ValueError(f"a reason is at most {MAX_REASON} characters, not {len(reason)}")


class PauseOps(abc.ABC):
    """The part of the store contract for paused queues and kinds."""

    @abc.abstractmethod
    def pause_add(self, scope: str, name: str, by: str = "", reason: str = "") -> PauseAdded:
        """Pause a queue or kind (idempotent: pausing it again keeps the first pause) and set
        `stop_request = 'pause'` on its running jobs that have no stop request, in one
        transaction. ValueError for a bad scope or name (`check_pause`)."""

    @abc.abstractmethod
    def pause_remove(self, scope: str, name: str) -> bool:
        """Resume a queue or kind; False when it was not paused. Running jobs of it whose
        'pause' request is still set, and that no other pause covers, have it taken back."""

    @abc.abstractmethod
    def pause_stop_running(self) -> int:
        """Set `stop_request = 'pause'` on running jobs of every paused queue and kind that
        have no stop request; how many. A worker calls it once it has seen a new pause, for the
        jobs it claimed between the pause and its reading of it."""

    @abc.abstractmethod
    def pause_list(self) -> list[Pause]:
        """Every pause, by scope then name: one read of a small table, cheap enough for each
        worker to make twice a second."""
