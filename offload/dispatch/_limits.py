"""Concurrency and rate limits per key, and how a claim honours them.

A job type declares `limit=Limit("webhooks:{shop_id}", concurrency=1)`: the key is formatted
from each job's arguments at enqueue (without a key, the limit is global to the job type). A
key may cap how many of its jobs run at once (`concurrency`; 1 is a mutex), how many start per
period (`rate` per `per` seconds, a token bucket holding up to `burst`), keep its jobs' start
order (`fifo`), and adapt (`adaptive=Adaptive(...)`, see `_adaptive.py`).

Each key has one small row in the store (its declaration, tokens and adaptive value). A claim
reads the rows of the keys among its candidates, counts their running jobs, and `plan` picks
candidates in claim order, skipping a key once it is saturated: later pages of candidates are
fetched with the saturated keys excluded, and the scan stops after `max_scan` rows, so a claim
never spins on a saturated key (a saturated key with a huge backlog at the head of a queue
costs each claim up to `max_scan` rows of index, and jobs behind that many wait for it).

A waiting job starts as soon as its key allows: a finished job of a key wakes the workers of
its queue (the store notifies), and a claim that skipped a key for want of rate tokens knows
when the next one is due (`Plan.next_start`), so its worker wakes then (`Alarm`), not at its
next poll.
"""

from __future__ import annotations

import math
import string
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from offload._errors import ConfigurationError, InvalidArgumentsError
from offload.dispatch._adaptive import Adaptive

CONCURRENCY = "concurrency"
RATE = "rate"
MAX_SCAN = 1000  # candidate rows one claim reads at most while skipping saturated keys
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class LimitSpec:
    """A key's declaration as the store keeps it (numbers only)."""

    concurrency: int | None = None
    rate: float | None = None
    period: float = 1.0
    burst: float | None = None
    fifo: bool = False
    adapt_target: str | None = None  # CONCURRENCY or RATE when adaptive
    adapt_min: float | None = None
    adapt_max: float | None = None
    adapt_step: float | None = None
    adapt_factor: float | None = None
    adapt_cooldown: float | None = None

    @property
    def start_value(self) -> float | None:
        """The adaptive value a new key starts from: the declared concurrency or rate."""
        if self.adapt_target == CONCURRENCY:
            return float(self.concurrency or 1)
        if self.adapt_target == RATE:
            return self.rate
        return None

    @property
    def capacity(self) -> float | None:
        """Tokens a full bucket holds (None without a rate)."""
        if self.rate is None:
            return None
        return self.burst if self.burst is not None else self.rate


@dataclass(frozen=True, slots=True)
class Limit:
    """A limit on a job type: `Limit("api:{host}", concurrency=4, rate=10, per=1)`.

    key: a template formatted from the job's arguments (`{name}`; `{{` for a brace), or None
        for one limit over the whole job type (the key is then its name).
    concurrency: how many jobs of the key run at once (1: a mutex per key).
    rate, per, burst: at most `rate` starts per `per` seconds, in bursts of up to `burst`
        (default `rate`), shared by every worker.
    fifo: jobs of a key start in enqueue order; the next waits while an earlier one is
        running or waiting to retry (needs `concurrency`).
    adaptive: make the concurrency (or, without one, the rate) adapt to the downstream.
    """

    key: str | None = None
    concurrency: int | None = None
    rate: float | None = None
    per: float | timedelta = 1.0
    burst: float | None = None
    fifo: bool = False
    adaptive: Adaptive | None = None

    def validate(self, job: str, parameters: Collection[str] | None) -> Limit:
        """Check the declaration; `parameters` are the job's argument names (None: any)."""
        what = f"job {job!r}: limit"
        if self.concurrency is None and self.rate is None:
            raise ConfigurationError(
                f"{what} needs a concurrency or a rate, e.g. "
                'Limit("webhooks:{shop_id}", concurrency=1) or Limit(rate=10, per=1)'
            )
        if self.concurrency is not None and (
            isinstance(self.concurrency, bool)
            or not isinstance(self.concurrency, int)
            or self.concurrency < 1
        ):
            raise ConfigurationError(f"{what}: concurrency must be an integer >= 1")
        for name in ("rate", "burst"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ConfigurationError(f"{what}: {name} must be a positive number")
        if self.burst is not None and self.burst < 1:
            raise ConfigurationError(f"{what}: burst must be at least 1 (one start)")
        if _seconds(self.per) <= 0:
            raise ConfigurationError(f"{what}: per must be a positive duration")
        if self.fifo and self.concurrency is None:
            raise ConfigurationError(
                f"{what}: fifo keeps start order among running jobs; give a concurrency too"
            )
        if self.adaptive is not None:
            if not isinstance(self.adaptive, Adaptive):
                raise ConfigurationError(f"{what}: adaptive takes an offload.Adaptive(...)")
            self.adaptive.validate(what)
        if self.key is not None and not isinstance(self.key, str):
            raise ConfigurationError(
                f"{what}: key must be a string template such as 'api:{{host}}'"
            )
        names = template_fields(self.key or "", what)
        if parameters is not None:
            unknown = [n for n in names if n not in parameters]
            if unknown:
                raise ConfigurationError(
                    f"{what} key {self.key!r} names {unknown[0]!r}, which is not an argument of "
                    f"the job (its arguments: {', '.join(parameters) or 'none'})"
                )
        return self

    def spec(self) -> LimitSpec:
        adaptive = self.adaptive
        target = None
        if adaptive is not None:
            target = CONCURRENCY if self.concurrency is not None else RATE
        return LimitSpec(
            concurrency=self.concurrency,
            rate=None if self.rate is None else float(self.rate),
            period=_seconds(self.per),
            burst=None if self.burst is None else float(self.burst),
            fifo=bool(self.fifo),
            adapt_target=target,
            adapt_min=None if adaptive is None else float(adaptive.floor),
            adapt_max=None if adaptive is None else float(adaptive.ceiling),
            adapt_step=None if adaptive is None else float(adaptive.increase),
            adapt_factor=None if adaptive is None else float(adaptive.decrease),
            adapt_cooldown=None if adaptive is None else float(adaptive.cooldown),
        )

    def key_for(self, job: str, arguments: Mapping[str, Any], defaults: Mapping[str, Any]) -> str:
        """The key of one job, formatted from its arguments (then the parameters' defaults)."""
        return format_template(self.key, job, arguments, defaults, "limit key") or job


def format_template(
    template: str | None,
    job: str,
    arguments: Mapping[str, Any],
    defaults: Mapping[str, Any],
    what: str,
) -> str | None:
    """`template` formatted from a job's arguments, with an error naming a missing one."""
    if template is None:
        return None
    values = {**defaults, **arguments}
    try:
        return string.Formatter().vformat(template, (), values)
    except KeyError as exc:
        name = exc.args[0]
        raise InvalidArgumentsError(
            f"the {what} {template!r} of job {job!r} needs the argument {name!r}, which this "
            "call does not give (and it has no default)",
            str(name),
        ) from None
    except (IndexError, AttributeError, ValueError) as exc:
        raise InvalidArgumentsError(f"the {what} {template!r} of job {job!r}: {exc}") from None


def template_fields(template: str, what: str) -> list[str]:
    """The argument names a template refers to (`{a}`, `{a[0]}`, `{a.b}` all name `a`)."""
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigurationError(f"{what}: bad template {template!r}: {exc}") from None
    for _, name, _, _ in parsed:
        if name is None:
            continue
        head = name.split(".", 1)[0].split("[", 1)[0]
        if not head or head.isdigit():
            raise ConfigurationError(
                f"{what}: template {template!r} must name arguments, e.g. 'webhooks:{{shop_id}}'"
            )
        names.append(head)
    return names


def _seconds(value: float | timedelta) -> float:
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigurationError(f"per must be seconds or a timedelta, got {value!r}")
    return float(value)


# --- claiming ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Candidate:
    """An available job a claim may take, in claim order."""

    id: int
    queue: str
    priority: int
    order_key: float
    limit_key: str | None


def claim_order(c: Candidate) -> tuple[int, float, int]:
    return (-c.priority, c.order_key, c.id)


@dataclass(frozen=True, slots=True)
class KeyRow:
    """A key's row as a claim reads it, with its running jobs counted and, for a FIFO key, the
    available jobs among the first `concurrency` of its unfinished ones (by id)."""

    key: str
    concurrency: int | None
    rate: float | None
    period: float | None
    burst: float | None
    fifo: bool
    adapt_target: str | None
    adapt_value: float | None
    tokens: float | None
    refilled_at: float | None
    running: int = 0
    head: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class KeyState:
    """What a key allows now: `allowance` more starts (None: no bound), FIFO head ids."""

    key: str
    allowance: int | None
    fifo: bool
    head: frozenset[int]
    rate: float | None
    tokens: float | None  # refilled to now, before this claim takes any
    period: float = 1.0


def effective(row: KeyRow) -> tuple[int | None, float | None]:
    """The concurrency and rate in force: the adaptive value replaces the declared one."""
    concurrency, rate = row.concurrency, row.rate
    if row.adapt_value is not None and row.adapt_target == CONCURRENCY:
        concurrency = max(1, int(math.floor(row.adapt_value + _EPS)))
    elif row.adapt_value is not None and row.adapt_target == RATE:
        rate = row.adapt_value
    return concurrency, rate


def refill(
    tokens: float | None,
    refilled_at: float | None,
    rate: float,
    period: float,
    capacity: float,
    now: float,
) -> float:
    """A token bucket's level now."""
    if tokens is None or refilled_at is None:
        return capacity
    elapsed = max(0.0, now - refilled_at)
    return min(capacity, tokens + elapsed * rate / period)


def key_state(row: KeyRow, now: float) -> KeyState:
    concurrency, rate = effective(row)
    allowance: int | None = None
    if concurrency is not None:
        allowance = max(0, concurrency - row.running)
    tokens = None
    if rate is not None:
        capacity = row.burst if row.burst is not None else max(rate, 1.0)
        tokens = refill(row.tokens, row.refilled_at, rate, row.period or 1.0, capacity, now)
        by_tokens = int(math.floor(tokens + _EPS))
        allowance = by_tokens if allowance is None else min(allowance, by_tokens)
    if row.fifo:
        allowance = len(row.head) if allowance is None else min(allowance, len(row.head))
    return KeyState(row.key, allowance, row.fifo, row.head, rate, tokens, row.period or 1.0)


@dataclass(slots=True)
class Plan:
    """A claim's choice: job ids in claim order, starts taken per key, the keys' states."""

    chosen: list[Candidate] = field(default_factory=list)
    taken: Counter[str] = field(default_factory=Counter)
    states: dict[str, KeyState] = field(default_factory=dict)
    saturated: set[str] = field(default_factory=set)
    scanned: int = 0

    def next_start(self) -> float | None:
        """Seconds until a key this claim saw saturated may start a job again without a job of
        its own finishing: the next rate token of a key short of tokens. None when only running
        jobs hold keys back (their ends wake the workers) or a key's row could not be read (held
        by another claim, whose end wakes them too)."""
        waits = []
        for key in self.saturated:
            st = self.states.get(key)
            if st is None or st.rate is None or st.tokens is None or st.rate <= 0:
                continue
            left = st.tokens - self.taken[key]
            if left < 1 - _EPS:
                waits.append((1 - left) * st.period / st.rate)
        return min(waits) if waits else None

    def token_updates(self) -> list[tuple[str, float]]:
        """(key, tokens left) for every rate-limited key this claim took from."""
        out = []
        for key, n in sorted(self.taken.items()):
            st = self.states[key]
            if st.tokens is not None:
                out.append((key, st.tokens - n))
        return out


Fetch = Callable[[str, "Candidate | None", frozenset[str], int], Sequence[Candidate]]
Load = Callable[[Sequence[str]], Mapping[str, KeyRow]]


def plan(
    queues: Sequence[str],
    limit: int,
    fetch: Fetch,
    load: Load,
    now: float,
    first: Mapping[str, Sequence[Candidate]] | None = None,
    max_scan: int = MAX_SCAN,
) -> Plan:
    """Choose up to `limit` candidates in claim order, honouring the limits of their keys.

    `fetch(queue, after, excluded, n)` returns the next `n` candidates of a queue after
    `after`, leaving out keys in `excluded`; `load(keys)` returns the rows of keys it could
    read (a key it could not, e.g. locked by another claim, counts as saturated). `first` may
    hold pages already read.
    """
    out = Plan()
    page = max(2 * limit, 32)
    after: dict[str, Candidate | None] = {q: None for q in queues}
    live = list(dict.fromkeys(queues))
    while live and len(out.chosen) < limit and out.scanned < max_scan:
        batch: list[Candidate] = []
        for queue in list(live):
            rows: Sequence[Candidate]
            if first is not None and after[queue] is None and queue in first:
                rows = first[queue]
                size = limit
            else:
                rows = fetch(queue, after[queue], frozenset(out.saturated), page)
                size = page
            out.scanned += len(rows)
            if len(rows) < size:
                live.remove(queue)
            if rows:
                after[queue] = rows[-1]
            batch.extend(rows)
        first = None
        batch.sort(key=claim_order)
        fresh = sorted({c.limit_key for c in batch if c.limit_key} - out.states.keys())
        if fresh:
            rows_by_key = load(fresh)
            for key in fresh:
                row = rows_by_key.get(key)
                if row is None:
                    out.saturated.add(key)
                else:
                    out.states[key] = key_state(row, now)
        for c in batch:
            if len(out.chosen) >= limit:
                break
            if c.limit_key is None:
                out.chosen.append(c)
                continue
            key = c.limit_key
            if key in out.saturated:
                continue
            st = out.states[key]
            left = None if st.allowance is None else st.allowance - out.taken[key]
            if (left is None or left > 0) and (not st.fifo or c.id in st.head):
                out.chosen.append(c)
                out.taken[key] += 1
                left = None if left is None else left - 1
            if left is not None and left <= 0:
                out.saturated.add(key)
    return out


class Alarm:
    """When this process's workers should look for limited jobs again without a wake-up from
    the store: the earliest `next_start` its claims reported (thread-safe, monotonic time)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._at = math.inf

    def set(self, seconds: float | None) -> None:
        """Ring in `seconds` (an earlier time already set wins); None leaves it as it is."""
        if seconds is None:
            return
        at = time.monotonic() + max(seconds, 0.0)
        with self._lock:
            self._at = min(self._at, at)

    def left(self) -> float:
        """Seconds until it rings (0: due now; inf: not set)."""
        with self._lock:
            return max(self._at - time.monotonic(), 0.0)

    def take(self) -> bool:
        """True once when due (and clears it)."""
        with self._lock:
            if time.monotonic() < self._at:
                return False
            self._at = math.inf
            return True
