"""The fault tests' ledger and its checker, a port of Jepsen's total-queue.

The ledger lives outside the store under test: job code appends `start` and `end` lines, and
producers append `invoke`, then `ok` (the enqueue returned: the job is acknowledged), `fail`
(it raised: nothing was stored) or `info` (unknown: e.g. the connection dropped during COMMIT).
Each line is one `write` on an `O_APPEND` file, so lines of many processes never interleave:
`<event> <key> <pid> <monotonic ns> [job id]`.

`check()` reads the ledger and the store after the faults have healed and the backlog drained,
and counts, by Jepsen's definitions over keys (A attempted, K acknowledged, S starts, E ends):
lost = K - distinct(E), unexpected = distinct(S) - A, duplicated = keys ended more than once,
restarted = keys started more than once, recovered = distinct(E) & (A - K), and stuck = jobs
the store still holds in a non-final state. `Verdict.assert_holds` applies the bounds of each
delivery mode; `record_figures` keeps the figures of a run for docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offload import Offload, StoreError
from offload._states import FINAL_STATES
from offload.store._contract import JobFilter

EVENTS = ("invoke", "ok", "fail", "info", "start", "end")


def note(folder: Path | str, event: str, key: str, job_id: int | None = None) -> None:
    """Append one ledger line to `folder/ledger`, atomically with respect to other processes."""
    assert event in EVENTS, event
    extra = "" if job_id is None else f" {job_id}"
    line = f"{event} {key} {os.getpid()} {time.monotonic_ns()}{extra}\n".encode()
    fd = os.open(Path(folder) / "ledger", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        if event == "end":
            os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class Line:
    event: str
    key: str
    pid: int
    mono_ns: int
    job_id: int | None = None


class Ledger:
    """The ledger of one test, in `folder/ledger`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "ledger"

    def note(self, event: str, key: str, job_id: int | None = None) -> None:
        note(self.folder, event, key, job_id)

    def lines(self) -> list[Line]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        out = []
        for raw in text.splitlines():
            parts = raw.split()
            if len(parts) < 4:  # a line cut short by a crash of its writer
                continue
            job_id = int(parts[4]) if len(parts) > 4 else None
            out.append(Line(parts[0], parts[1], int(parts[2]), int(parts[3]), job_id))
        return out

    def keys(self, event: str) -> Counter[str]:
        return Counter(line.key for line in self.lines() if line.event == event)

    def pids(self, event: str, key: str) -> list[int]:
        return [x.pid for x in self.lines() if (x.event, x.key) == (event, key)]

    def times(self, event: str, key: str) -> list[float]:
        """When `key` had `event`, in `time.monotonic()` seconds (one clock for every process
        of the machine, whatever its wall clock says)."""
        return [x.mono_ns / 1e9 for x in self.lines() if (x.event, x.key) == (event, key)]

    def enqueue(
        self,
        app: Offload,
        kind: str,
        key: str,
        *,
        call_options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> int | None:
        """Enqueue `kind(key=key, **kwargs)` with the producer's ledger lines around it; the
        job id, or None when the enqueue raised (recorded as `fail`, or `info` when the store
        may have committed it). `call_options` are per-call options (`delay`, `unique_key`,
        `max_attempts` ...), as `app.call(kind, **call_options)` takes them."""
        self.note("invoke", key)
        try:
            if call_options:
                job = app.call(kind, **call_options).enqueue(key=key, **kwargs)
            else:
                job = app.enqueue(kind, key=key, **kwargs)
        except StoreError:
            self.note("info", key)
            return None
        except Exception:
            self.note("fail", key)
            raise
        self.note("ok", key, job.id)
        return job.id

    def enqueue_many(
        self,
        app: Offload,
        kind: str,
        keys: Iterable[str],
        *,
        call_options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[int] | None:
        """`enqueue` for many keys in one transaction (`app.enqueue_many`): their ids, or
        None when it raised (every key `info` or `fail`, as `enqueue` records one)."""
        keys = list(keys)
        call = app.call(kind, **(call_options or {}))
        prepared = [call.prepare(key=key, **kwargs) for key in keys]
        for key in keys:
            self.note("invoke", key)
        try:
            jobs = app.enqueue_many(prepared)
        except StoreError:
            for key in keys:
                self.note("info", key)
            return None
        except Exception:
            for key in keys:
                self.note("fail", key)
            raise
        for key, job in zip(keys, jobs, strict=True):
            self.note("ok", key, job.id)
        return [job.id for job in jobs]


@dataclass
class Verdict:
    """What one run did, by Jepsen's total-queue definitions."""

    attempted: set[str]
    acknowledged: set[str]
    started: Counter[str]
    ended: Counter[str]
    stuck: dict[int, str] = field(default_factory=dict)  # job id -> state, not final
    must_end: set[str] = field(default_factory=set)  # acknowledged keys whose job succeeds

    @property
    def lost(self) -> set[str]:
        return self.must_end - set(self.ended)

    @property
    def unexpected(self) -> set[str]:
        return set(self.started) - self.attempted

    @property
    def duplicated(self) -> set[str]:
        return {k for k, n in self.ended.items() if n > 1}

    @property
    def restarted(self) -> set[str]:
        return {k for k, n in self.started.items() if n > 1}

    @property
    def recovered(self) -> set[str]:
        return set(self.ended) & (self.attempted - self.acknowledged)

    def figures(self) -> dict[str, int]:
        return {
            "jobs": len(self.acknowledged),
            "lost": len(self.lost),
            "duplicated": len(self.duplicated),
            "restarted": len(self.restarted),
            "unexpected": len(self.unexpected),
            "recovered": len(self.recovered),
            "stuck": len(self.stuck),
        }

    def assert_holds(
        self,
        *,
        max_duplicated: int = 0,
        max_restarted: int | None = None,
        at_most_once: Iterable[str] = (),
    ) -> None:
        """Nothing lost, nothing unexpected, nothing stuck; duplicates within their bound
        (0 unless the test's faults overlapped running jobs of an at-least-once type), and no
        at-most-once key started twice."""
        problems = []
        if self.lost:
            problems.append(f"lost {len(self.lost)}: {sorted(self.lost)[:10]}")
        if self.unexpected:
            problems.append(f"unexpected {len(self.unexpected)}: {sorted(self.unexpected)[:10]}")
        if self.stuck:
            problems.append(f"stuck {len(self.stuck)}: {dict(list(self.stuck.items())[:10])}")
        if len(self.duplicated) > max_duplicated:
            problems.append(
                f"duplicated {len(self.duplicated)} > {max_duplicated}: "
                f"{sorted(self.duplicated)[:10]}"
            )
        if max_restarted is not None and len(self.restarted) > max_restarted:
            problems.append(f"restarted {len(self.restarted)} > {max_restarted}")
        twice = {k for k in at_most_once if self.started[k] > 1}
        if twice:
            problems.append(f"at-most-once jobs started twice: {sorted(twice)[:10]}")
        assert not problems, "; ".join(problems) + f" (figures {self.figures()})"


def check(
    ledger: Ledger,
    app: Offload,
    *,
    succeeds: Callable[[str], bool] = lambda key: True,
    kinds: Iterable[str] | None = None,
) -> Verdict:
    """The verdict of a healed, drained run: the ledger against the store. `succeeds(key)` says
    which acknowledged jobs must end (a job meant to fail or to be shed need not); `kinds`
    limits the stuck-job count to those job types (default: every job)."""
    lines = ledger.lines()
    attempted = {x.key for x in lines if x.event == "invoke"}
    acknowledged = {x.key for x in lines if x.event == "ok"}
    started = Counter(x.key for x in lines if x.event == "start")
    ended = Counter(x.key for x in lines if x.event == "end")
    wanted = None if kinds is None else set(kinds)
    stuck: dict[int, str] = {}
    before = None
    while True:
        page = app.store.job_list(JobFilter(limit=1000, before_id=before))
        for job in page:
            if job.state not in FINAL_STATES and (wanted is None or job.kind in wanted):
                stuck[job.id] = job.state
        if len(page) < 1000:
            break
        before = page[-1].id
    return Verdict(
        attempted,
        acknowledged,
        started,
        ended,
        stuck,
        {k for k in acknowledged if succeeds(k)},
    )


def record_figures(test: str, engine: str, verdict: Verdict, **extra: Any) -> None:
    """Append this run's figures to `$OFFLOAD_FAULT_FIGURES` (JSON lines), when it is set;
    `python -m tests.faults.figures` turns that file into docs/reliability.md's table."""
    path = os.environ.get("OFFLOAD_FAULT_FIGURES")
    if not path:
        return
    row = {"test": test, "engine": engine, **verdict.figures(), **extra}
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(row, sort_keys=True) + "\n")
