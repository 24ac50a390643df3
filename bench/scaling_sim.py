"""A discrete-event model of offload on several PostgreSQL databases (shards), for docs/scaling.md.

Nothing here runs offload: it is a seeded simulation, standard library only, of the plan in
docs/scaling.md, so that its claims (throughput grows with the shard count until polling every
shard costs too much, polling weighted by backlog keeps waits short under skew where polling in
turn does not, a tenant moves without losing or doubling a job, one shard's outage leaves the
others running) are numbers before any code is written.

    python bench/scaling_sim.py                  # every scenario of docs/scaling.md, as tables
    python bench/scaling_sim.py --seed 7         # the same with another seed
    python bench/scaling_sim.py --quick          # half-length runs

The model, with costs from bench/README.md's last run on the development machine:

- A shard is one database serving one request at a time: a claim costs a fixed 0.2 ms plus
  1/25,000 s per job (the drain's claim-and-acknowledge cost, 25k jobs/s against a 52k/s bare
  loop), an enqueued job 1/47,000 s (bulk enqueue, 47k jobs/s). Within a shard, jobs are taken
  in turn by tenant (start-time fair queuing with equal weights).
- Tenants have Zipf-skewed arrival rates; producers send a batch every 10 ms to the shard the
  tenant → shard map names. A producer learns a changed map up to `map_ttl` late.
- A worker process claims up to 32 jobs, runs them one after another at 1/10,000 s each (two
  processes drained 20k jobs/s), and claims again when half its batch is left. After a round of
  empty claims it sleeps 5 ms (a wake-up's latency). It picks the shard to claim from in turn
  (`round-robin`), or by smooth weighted round-robin with weights half even and half by each
  shard's backlog, read every 100 ms and corrected by its own claims (`backlog`).
- A tenant moves by copy with fencing (docs/scaling.md): the map changes, the source refuses
  the tenant's inserts (a stale producer retries at the destination), and a copier moves waiting
  jobs in batches: insert them held at the destination, then take them off the source only if
  still waiting there, and release those (a claim in between wins, and its copy is dropped).
  `drain` is drain and switch instead: the destination holds the tenant's new jobs until the
  source has none of its jobs waiting. `naive` copies without the fence, to show what the checks
  catch.

Every job has an id; the run ends when all enqueued jobs ran, and checks that each ran exactly
once (`lost`: never ran, `doubled`: claimed more than once).
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import math
import random
import sys
import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

POLICIES = ("round-robin", "backlog")
MOVES = ("fenced", "drain", "naive")


@dataclass(frozen=True)
class Config:
    """One run: the shape of the fleet, the load, the worker policy and what happens mid-run."""

    shards: int = 4
    tenants: int = 50
    zipf: float = 1.1  # tenant i's rate is proportional to 1 / (i + 1) ** zipf
    arrival_rate: float = 30_000.0  # jobs/s offered by all tenants together
    workers: int = 4  # worker processes
    shards_per_worker: int | None = None  # each worker serves this many shards (None: all)
    policy: str = "backlog"
    duration: float = 4.0  # seconds of arrivals; the run then drains what is left
    warmup: float = 0.5  # throughput and lag count jobs enqueued after this
    seed: int = 1
    # costs (seconds), from bench/README.md
    claim_fixed: float = 0.0002
    claim_per_job: float = 1 / 25_000
    enqueue_per_job: float = 1 / 47_000
    run_per_job: float = 1 / 10_000
    batch: int = 32
    idle_sleep: float = 0.005
    snapshot_every: float = 0.1
    producer_every: float = 0.01
    producers: int = 8
    map_ttl: float = 0.2
    # a tenant move: which tenant (rank by rate, 0 = hottest; None: no move), when, how
    move_tenant: int | None = None
    move_at: float = 2.0
    move: str = "fenced"
    copy_batch: int = 500
    # one shard down from outage[1] to outage[2] seconds (None: no outage)
    outage: tuple[int, float, float] | None = None
    retry_after: float = 0.25

    def check(self) -> None:
        """Raise ValueError naming the first setting that cannot be simulated."""
        if self.shards < 1 or self.tenants < 1 or self.workers < 1:
            raise ValueError("shards, tenants and workers must each be at least 1")
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}, not {self.policy!r}")
        if self.move not in MOVES:
            raise ValueError(f"move must be one of {', '.join(MOVES)}, not {self.move!r}")
        if self.arrival_rate <= 0 or self.duration <= self.warmup:
            raise ValueError("arrival_rate must be positive and duration longer than warmup")
        if self.move_tenant is not None and not 0 <= self.move_tenant < self.tenants:
            raise ValueError(f"move_tenant must be between 0 and {self.tenants - 1}")
        if self.move_tenant is not None and self.shards < 2:
            raise ValueError("a tenant move needs at least 2 shards")
        if self.shards_per_worker is not None and not 1 <= self.shards_per_worker <= self.shards:
            raise ValueError(f"shards_per_worker must be between 1 and {self.shards}")
        if self.outage is not None and not 0 <= self.outage[0] < self.shards:
            raise ValueError(f"outage shard must be between 0 and {self.shards - 1}")


@dataclass
class Shard:
    """One database: its queue of waiting jobs by tenant, and when it is next free."""

    queues: dict[int, deque[int]] = field(default_factory=dict)
    copies: dict[int, deque[int]] = field(default_factory=dict)  # moved in: ahead of the queue
    turn: deque[int] = field(default_factory=deque)  # tenants with waiting jobs, in turn
    live: set[int] = field(default_factory=set)  # ids claimable here
    held: dict[int, list[int]] = field(default_factory=dict)  # tenant -> ids held (a move)
    busy_until: float = 0.0
    down: bool = False

    def backlog(self) -> int:
        return len(self.live)

    def add(self, tenant: int, job: int, copied: bool = False) -> None:
        """Make a job claimable here; a copied one goes ahead of the tenant's jobs enqueued
        here, since it was enqueued before them."""
        self.live.add(job)
        queue = self.queues.setdefault(tenant, deque())
        copies = self.copies.setdefault(tenant, deque())
        if not queue and not copies:
            self.turn.append(tenant)
        (copies if copied else queue).append(job)

    def take(self, limit: int) -> list[tuple[int, int]]:
        """Claim up to `limit` jobs, one tenant at a time in turn: (tenant, id) pairs."""
        taken: list[tuple[int, int]] = []
        while self.turn and len(taken) < limit:
            tenant = self.turn.popleft()
            copies, queue = self.copies[tenant], self.queues[tenant]
            while copies or queue:
                job = (copies or queue).popleft()
                if job in self.live:  # rows copied away are skipped, as a claim skips them
                    self.live.discard(job)
                    taken.append((tenant, job))
                    break
            if copies or queue:
                self.turn.append(tenant)
        return taken

    def waiting(self, tenant: int, limit: int) -> list[int]:
        """The tenant's oldest waiting ids here (what a copier reads), without claiming them."""
        queue = self.queues.get(tenant, deque())
        while queue and queue[0] not in self.live:
            queue.popleft()
        found: list[int] = []
        for job in queue:
            if len(found) == limit:
                break
            if job in self.live:
                found.append(job)
        return found


@dataclass
class Worker:
    """A worker process: its batch in hand, when it is free, and where it polls next."""

    index: int
    serves: list[int]
    buffer_until: float = 0.0  # when the jobs in hand are all run
    next_turn: int = 0
    empty_in_row: int = 0
    down_until: list[float] = field(default_factory=list)
    backlog: list[float] = field(default_factory=list)  # what it believes waits in each shard
    credit: list[float] = field(default_factory=list)  # smooth weighted round-robin's credit


@dataclass
class Result:
    """What a run measured, and the checks on every job."""

    config: Config
    throughput: float  # jobs/s started within [warmup, duration]
    lag: dict[str, float]  # p50, p99, max of all jobs' wait (enqueue to start), seconds
    tenant_p99: list[float]  # p99 wait by tenant rank (0 = hottest)
    per_shard_rate: list[float]  # expected arrivals per shard at the start, jobs/s
    enqueued: int
    lost: int
    doubled: int
    redirected: int  # inserts a source refused during a move, retried at the destination
    copied: int  # jobs a move copied from source to destination
    copy_dropped: int  # copies dropped because a claim at the source won
    moved_at_end: bool  # the moved tenant's jobs were all on the destination at the end
    move_wait_max: float = 0.0  # the moved tenant's longest wait, of jobs enqueued once it began
    claims_per_shard: float = 0.0  # claims/s each shard answered, on average, while producing
    empty_per_shard: float = 0.0  # of which came back empty
    outage_other_p99: float = 0.0  # p99 wait of the other shards' jobs enqueued in the outage
    outage_rate: float = 0.0  # jobs/s the other shards served during the outage
    before_outage_rate: float = 0.0  # the same shards' jobs/s in the same length of time before


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) of values by nearest rank; 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, math.ceil(q * len(ordered)) - 1)
    return ordered[rank]


def home_shard(tenant: int, shards: int) -> int:
    """Where the map puts a tenant at first: a stable hash of its name."""
    return zlib.crc32(f"tenant-{tenant}".encode()) % shards


class Simulation:
    """One seeded run of `Config`; `run()` returns its `Result`."""

    def __init__(self, config: Config) -> None:
        config.check()
        self.c = config
        self.rng = random.Random(config.seed)
        weights = [1 / (i + 1) ** config.zipf for i in range(config.tenants)]
        total = sum(weights)
        self.rates = [config.arrival_rate * w / total for w in weights]
        self.map = [home_shard(t, config.shards) for t in range(config.tenants)]
        self.shards = [Shard() for _ in range(config.shards)]
        k = config.shards_per_worker or config.shards
        self.workers = [
            Worker(
                i,
                serves=[(i + j) % config.shards for j in range(k)],
                next_turn=(i // config.shards) % k,
                down_until=[0.0] * config.shards,
                backlog=[0.0] * config.shards,
                credit=[0.0] * config.shards,
            )
            for i in range(config.workers)
        ]
        self.events: list[tuple[float, int, str, int]] = []
        self.seq = itertools.count()
        self.now = 0.0
        self.snapshot = [0] * config.shards
        self.enqueued_at: list[float] = []
        self.tenant_of: list[int] = []
        self.claims: list[int] = []
        self.started = 0  # jobs claimed at least once
        self.empty_claims = 0
        self.claim_count = 0
        self.started_at: list[float] = []
        self.start_shard: list[int] = []
        self.outbox: list[tuple[int, int]] = []  # (tenant, id) a down shard refused
        # the move: producers' view of the map, the source's fence, the copier's batch
        self.producer_map_epoch = [0] * config.producers
        self.map_epoch = 0
        self.move_from = -1
        self.move_to = -1
        self.fenced = False
        self.copy_inflight: list[int] = []
        self.move_done = config.move_tenant is None
        self.redirected = self.copied = self.copy_dropped = 0

    # -- the event loop ---------------------------------------------------------------------

    def at(self, time: float, kind: str, arg: int = 0) -> None:
        heapq.heappush(self.events, (time, next(self.seq), kind, arg))

    def run(self) -> Result:
        c = self.c
        for p in range(c.producers):
            self.at(p * c.producer_every / c.producers, "produce", p)
        for w in self.workers:
            self.at(w.index * 0.0001, "poll", w.index)
        self.at(0.0, "snapshot")
        if c.move_tenant is not None:
            self.at(c.move_at, "move-start")
        if c.outage is not None:
            self.at(c.outage[1], "down", c.outage[0])
            self.at(c.outage[2], "up", c.outage[0])
        handlers = {
            "produce": self.produce,
            "poll": self.poll,
            "snapshot": self.take_snapshot,
            "move-start": self.move_start,
            "move-fence": self.move_fence,
            "copy": self.copy,
            "drain-check": self.drain_check,
            "copy-mark": self.copy_mark,
            "learn": self.learn,
            "down": self.shard_down,
            "up": self.shard_up,
            "outbox": self.flush_outbox,
        }
        limit = c.duration + 120.0
        while self.events:
            time, _, kind, arg = heapq.heappop(self.events)
            if time > limit:
                break
            self.now = time
            handlers[kind](arg)
            if self.now > c.duration and self.idle():
                break
        return self.result()

    def idle(self) -> bool:
        """Nothing left to run: every job enqueued has started, and no move is under way."""
        return (
            len(self.enqueued_at) == self.started
            and not self.outbox
            and self.move_done
            and all(not s.live and not s.held for s in self.shards)
        )

    # -- producers ----------------------------------------------------------------------------

    def produce(self, producer: int) -> None:
        c = self.c
        if self.now >= c.duration:
            return
        by_shard: dict[int, list[tuple[int, int]]] = {}
        for tenant, rate in enumerate(self.rates):
            # each of the producers sends every `producer_every`: its share of the tenant's rate
            for _ in range(self.poisson(rate * c.producer_every / c.producers)):
                job = len(self.enqueued_at)
                self.enqueued_at.append(self.now)
                self.tenant_of.append(tenant)
                self.claims.append(0)
                self.started_at.append(-1.0)
                self.start_shard.append(-1)
                shard = self.route(producer, tenant)
                by_shard.setdefault(shard, []).append((tenant, job))
        for shard, jobs in by_shard.items():
            self.insert(shard, jobs)
        self.at(self.now + c.producer_every, "produce", producer)

    def route(self, producer: int, tenant: int) -> int:
        """The shard this producer's copy of the map names for the tenant."""
        if tenant == self.c.move_tenant and self.producer_map_epoch[producer] < self.map_epoch:
            return self.move_from
        return self.map[tenant]

    def insert(self, shard: int, jobs: list[tuple[int, int]]) -> None:
        """One bulk insert: refused by a down shard (kept in the producer's outbox), redirected
        by a source that fenced the moving tenant, held by a destination until its move ends."""
        s = self.shards[shard]
        if s.down:
            self.outbox.extend(jobs)
            return
        s.busy_until = max(self.now, s.busy_until) + len(jobs) * self.c.enqueue_per_job
        for tenant, job in jobs:
            if self.fenced and tenant == self.c.move_tenant and shard == self.move_from:
                self.redirected += 1  # the source's fence refuses it; the producer retries
                self.insert(self.move_to, [(tenant, job)])
            elif self.draining(tenant, shard):
                s.held.setdefault(tenant, []).append(job)  # runs once the source has drained
            else:
                s.add(tenant, job)

    def draining(self, tenant: int, shard: int) -> bool:
        """Whether this is the destination of a drain-and-switch move still under way."""
        return (
            self.c.move == "drain"
            and tenant == self.c.move_tenant
            and shard == self.move_to
            and not self.move_done
        )

    def flush_outbox(self, _: int) -> None:
        pending, self.outbox = self.outbox, []
        by_shard: dict[int, list[tuple[int, int]]] = {}
        for tenant, job in pending:
            by_shard.setdefault(self.map[tenant], []).append((tenant, job))
        for shard, jobs in by_shard.items():
            self.insert(shard, jobs)
        if self.outbox:
            self.at(self.now + self.c.retry_after, "outbox")

    def poisson(self, mean: float) -> int:
        if mean <= 0:
            return 0
        if mean > 50:  # normal approximation, to keep big batches cheap
            return max(0, round(self.rng.gauss(mean, math.sqrt(mean))))
        limit, k, p = math.exp(-mean), 0, 1.0
        while True:
            p *= self.rng.random()
            if p <= limit:
                return k
            k += 1

    # -- workers ------------------------------------------------------------------------------

    def take_snapshot(self, _: int) -> None:
        self.snapshot = [s.backlog() for s in self.shards]
        for worker in self.workers:  # every worker reads the shards' depths (a cheap count)
            worker.backlog = [float(n) for n in self.snapshot]
        if not (self.now > self.c.duration and self.idle()):
            self.at(self.now + self.c.snapshot_every, "snapshot")

    def pick(self, worker: Worker) -> int | None:
        """The shard this worker claims from next, by its policy; None when all are down."""
        usable = [i for i in worker.serves if worker.down_until[i] <= self.now]
        if not usable:
            return None
        if self.c.policy == "round-robin":
            for _ in range(len(worker.serves)):
                shard = worker.serves[worker.next_turn]
                worker.next_turn = (worker.next_turn + 1) % len(worker.serves)
                if shard in usable:
                    return shard
            return None
        # Smooth weighted round-robin: each shard's credit grows by its weight, the one with the
        # most credit is taken and pays the total. Weights: half even, half by backlog; the even
        # half keeps visiting shards whose backlog grew since the last read, the backlog half
        # follows the hot shards, and the turns stay as regular as plain round-robin's.
        est = [worker.backlog[i] for i in usable]
        floor = sum(est) / len(est) + 1
        for b, i in zip(est, usable, strict=True):
            worker.credit[i] += b + floor
        shard = max(usable, key=lambda i: (worker.credit[i], -i))
        worker.credit[shard] -= sum(est) + floor * len(est)
        return shard

    def poll(self, index: int) -> None:
        c = self.c
        worker = self.workers[index]
        shard = self.pick(worker)
        if shard is None:
            self.at(self.now + c.retry_after, "poll", index)
            return
        s = self.shards[shard]
        if s.down:  # the claim times out; the worker leaves this shard alone for a while
            worker.down_until[shard] = self.now + c.retry_after
            self.at(self.now + c.idle_sleep, "poll", index)
            return
        in_hand = max(0.0, worker.buffer_until - self.now)
        limit = c.batch - int(in_hand / c.run_per_job)
        taken = s.take(max(1, limit))
        if self.now < c.duration:
            self.claim_count += 1
        start = max(self.now, s.busy_until)
        s.busy_until = start + c.claim_fixed + len(taken) * c.claim_per_job
        done = s.busy_until
        # what the claim says of the shard: drained when it came back short, else more waits
        if len(taken) < limit:
            worker.backlog[shard] = 0.0
        else:
            worker.backlog[shard] = max(worker.backlog[shard] - len(taken), float(limit))
        if not taken:
            if self.now < c.duration:
                self.empty_claims += 1
            worker.empty_in_row += 1
            if worker.empty_in_row >= len(worker.serves):
                worker.empty_in_row = 0
                self.at(done + c.idle_sleep, "poll", index)
            else:
                self.at(done, "poll", index)
            return
        worker.empty_in_row = 0
        run_from = max(done, worker.buffer_until)
        for i, (_, job) in enumerate(taken):
            self.claims[job] += 1
            if self.started_at[job] < 0:
                self.started += 1
                self.started_at[job] = run_from + i * c.run_per_job
                self.start_shard[job] = shard
        worker.buffer_until = run_from + len(taken) * c.run_per_job
        # claim again when half the batch is left (the next cycle's round trip overlaps it)
        self.at(max(done, worker.buffer_until - c.batch / 2 * c.run_per_job), "poll", index)

    # -- a tenant move ------------------------------------------------------------------------

    def move_start(self, _: int) -> None:
        """Pick the least-loaded destination, change the map, and tell producers (late)."""
        c = self.c
        tenant = c.move_tenant
        assert tenant is not None  # noqa: S101 - scheduled only with a tenant to move
        self.move_from = self.map[tenant]
        load = [0.0] * c.shards
        for t, rate in enumerate(self.rates):
            load[self.map[t]] += rate
        candidates = [i for i in range(c.shards) if i != self.move_from]
        self.move_to = min(candidates, key=lambda i: (load[i], i))
        self.map[tenant] = self.move_to
        self.map_epoch += 1
        for p in range(c.producers):
            self.at(self.now + self.rng.uniform(0, c.map_ttl), "learn", p)
        self.at(self.now + c.producer_every, "move-fence")

    def learn(self, producer: int) -> None:
        self.producer_map_epoch[producer] = self.map_epoch

    def move_fence(self, _: int) -> None:
        """The source refuses the tenant's inserts from now on; the copier starts (or, to
        drain and switch, the wait for the source to run the tenant's jobs)."""
        self.fenced = True
        self.at(self.now, "drain-check" if self.c.move == "drain" else "copy")

    def drain_check(self, _: int) -> None:
        """Drain and switch: once the source has no waiting job of the tenant, release the
        jobs the destination held."""
        tenant = self.c.move_tenant
        assert tenant is not None  # noqa: S101 - scheduled only with a tenant to move
        if self.shards[self.move_from].waiting(tenant, 1):
            self.at(self.now + self.c.producer_every, "drain-check")
            return
        dst = self.shards[self.move_to]
        for job in dst.held.pop(tenant, []):
            dst.add(tenant, job)
        self.move_done = True

    def copy(self, _: int) -> None:
        """Read a batch of the tenant's waiting jobs at the source; insert them at the
        destination (held when fenced, claimable at once when naive)."""
        c = self.c
        tenant = c.move_tenant
        assert tenant is not None  # noqa: S101 - scheduled only with a tenant to move
        src, dst = self.shards[self.move_from], self.shards[self.move_to]
        batch = src.waiting(tenant, c.copy_batch)
        if not batch:  # the source's fence lets no new job of the tenant in: the move is over
            self.move_done = True
            return
        dst.busy_until = max(self.now, dst.busy_until) + len(batch) * c.enqueue_per_job
        if c.move == "naive":
            for job in batch:
                dst.add(
                    tenant, job, copied=True
                )  # claimable at both ends until the source deletes it
        else:
            dst.held[tenant] = batch
        self.copy_inflight = batch
        self.at(dst.busy_until, "copy-mark")

    def copy_mark(self, _: int) -> None:
        """Take the batch off the source. Fenced: only ids still waiting there (one UPDATE …
        WHERE state = 'available'), then release their copies and drop the rest. Naive:
        delete at the source, whatever happened meanwhile."""
        c = self.c
        tenant = c.move_tenant
        assert tenant is not None  # noqa: S101 - scheduled only with a tenant to move
        src, dst = self.shards[self.move_from], self.shards[self.move_to]
        src.busy_until = max(self.now, src.busy_until) + len(self.copy_inflight) * c.claim_per_job
        for job in self.copy_inflight:
            still_waiting = job in src.live
            src.live.discard(job)
            if c.move == "naive":
                self.copied += 1
            elif still_waiting:
                dst.add(tenant, job, copied=True)
                self.copied += 1
            else:
                self.copy_dropped += 1
        dst.held.pop(tenant, None)
        self.copy_inflight = []
        self.at(src.busy_until, "copy")

    # -- an outage ----------------------------------------------------------------------------

    def shard_down(self, shard: int) -> None:
        self.shards[shard].down = True

    def shard_up(self, shard: int) -> None:
        self.shards[shard].down = False
        self.at(self.now, "outbox")

    # -- the result ---------------------------------------------------------------------------

    def result(self) -> Result:
        c = self.c
        window = [
            j
            for j, t in enumerate(self.enqueued_at)
            if c.warmup <= t < c.duration and self.claims[j]
        ]
        started = sum(1 for j, t in enumerate(self.started_at) if c.warmup <= t < c.duration)
        waits = [self.started_at[j] - self.enqueued_at[j] for j in window]
        by_tenant: list[list[float]] = [[] for _ in range(c.tenants)]
        for j in window:
            by_tenant[self.tenant_of[j]].append(self.started_at[j] - self.enqueued_at[j])
        per_shard = [0.0] * c.shards
        for t, rate in enumerate(self.rates):
            per_shard[home_shard(t, c.shards)] += rate
        moved_at_end, move_wait_max = True, 0.0
        if c.move_tenant is not None:
            late = [
                j
                for j, t in enumerate(self.enqueued_at)
                if self.tenant_of[j] == c.move_tenant and t >= c.move_at + c.map_ttl + 0.05
            ]
            moved_at_end = all(self.start_shard[j] == self.move_to for j in late)
            move_wait_max = max(
                (
                    self.started_at[j] - t
                    for j, t in enumerate(self.enqueued_at)
                    if self.tenant_of[j] == c.move_tenant and t >= c.move_at
                ),
                default=0.0,
            )
        outage_rate = before_rate = outage_other_p99 = 0.0
        if c.outage is not None:
            down, t0, t1 = c.outage
            others = [
                j for j, t in enumerate(self.started_at) if t >= 0 and self.start_shard[j] != down
            ]
            span = t1 - t0
            outage_rate = sum(1 for j in others if t0 <= self.started_at[j] < t1) / span
            before_rate = sum(1 for j in others if t0 - span <= self.started_at[j] < t0) / span
            outage_other_p99 = percentile(
                [
                    self.started_at[j] - self.enqueued_at[j]
                    for j in others
                    if t0 <= self.enqueued_at[j] < t1
                ],
                0.99,
            )
        return Result(
            config=c,
            throughput=started / (c.duration - c.warmup),
            lag={
                "p50": percentile(waits, 0.5),
                "p99": percentile(waits, 0.99),
                "max": max(waits, default=0.0),
            },
            tenant_p99=[percentile(w, 0.99) for w in by_tenant],
            per_shard_rate=per_shard,
            enqueued=len(self.enqueued_at),
            lost=sum(1 for n in self.claims if n == 0),
            doubled=sum(1 for n in self.claims if n > 1),
            redirected=self.redirected,
            copied=self.copied,
            copy_dropped=self.copy_dropped,
            moved_at_end=moved_at_end,
            move_wait_max=move_wait_max,
            claims_per_shard=self.claim_count / c.shards / c.duration,
            empty_per_shard=self.empty_claims / c.shards / c.duration,
            outage_other_p99=outage_other_p99,
            outage_rate=outage_rate,
            before_outage_rate=before_rate,
        )


def simulate(config: Config) -> Result:
    """Run one seeded simulation."""
    return Simulation(config).run()


# -- the scenarios of docs/scaling.md -----------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f}"


def scaling_table(base: Config) -> list[str]:
    """Throughput as shards grow: 2 workers per shard, each serving every shard, 12k jobs/s
    offered per shard (three quarters of what a shard can enqueue and claim), by 25 tenants per
    shard of equal rates (skew is the next tables' subject)."""
    rows = [
        "| shards | workers | offered jobs/s | served jobs/s | served per shard | wait p99 ms |",
        "| --: | --: | --: | --: | --: | --: |",
    ]
    for shards in (1, 2, 4, 8):
        config = replace(
            base,
            shards=shards,
            workers=2 * shards,
            arrival_rate=12_000.0 * shards,
            tenants=25 * shards,
            zipf=0.0,
            duration=2.0,
            move_tenant=None,
        )
        r = simulate(config)
        rows.append(
            f"| {shards} | {config.workers} | {config.arrival_rate:,.0f} | {r.throughput:,.0f} "
            f"| {r.throughput / shards:,.0f} | {ms(r.lag['p99'])} |"
        )
    return rows


def polling_load_table(base: Config) -> list[str]:
    """Claims each shard answers at a light load (1,000 jobs/s per shard), when every worker
    polls every shard and when each polls 2 of them."""
    rows = [
        "| shards | workers | shards per worker | claims/s per shard | of which empty "
        "| wait p99 ms |",
        "| --: | --: | --: | --: | --: | --: |",
    ]
    for shards in (2, 4, 8, 16):
        for per_worker in sorted({shards, 2}):
            config = replace(
                base,
                shards=shards,
                workers=2 * shards,
                shards_per_worker=per_worker,
                arrival_rate=1_000.0 * shards,
                tenants=25 * shards,
                zipf=0.0,
                duration=2.0,
                move_tenant=None,
            )
            r = simulate(config)
            rows.append(
                f"| {shards} | {config.workers} | {per_worker} | {r.claims_per_shard:,.0f} "
                f"| {r.empty_per_shard:,.0f} | {ms(r.lag['p99'])} |"
            )
    return rows


def policy_table(base: Config) -> list[str]:
    """Round-robin against backlog-weighted polling on a skewed load, at two rates."""
    rows = [
        "| offered jobs/s | polling | served jobs/s | wait p50 ms | wait p99 ms | wait max ms "
        "| hottest tenant p99 ms | worst tenant p99 ms |",
        "| --: | --- | --: | --: | --: | --: | --: | --: |",
    ]
    for rate in (20_000.0, base.arrival_rate):
        for policy in POLICIES:
            r = simulate(replace(base, policy=policy, arrival_rate=rate))
            rows.append(
                f"| {rate:,.0f} | {policy} | {r.throughput:,.0f} | {ms(r.lag['p50'])} "
                f"| {ms(r.lag['p99'])} | {ms(r.lag['max'])} | {ms(r.tenant_p99[0])} "
                f"| {ms(max(r.tenant_p99))} |"
            )
    return rows


def move_table(base: Config) -> list[str]:
    """The move of one tenant mid-run, each way, with both polling policies."""
    rows = [
        "| move | polling | enqueued | copied | copies dropped (a claim won) "
        "| inserts redirected | lost | doubled | tenant's new jobs on destination "
        "| tenant's longest wait from the move on, ms |",
        "| --- | --- | --: | --: | --: | --: | --: | --: | --- | --: |",
    ]
    for move in MOVES:
        for policy in POLICIES:
            r = simulate(replace(base, move=move, policy=policy))
            rows.append(
                f"| {move} | {policy} | {r.enqueued:,} | {r.copied:,} | {r.copy_dropped:,} "
                f"| {r.redirected:,} | {r.lost} | {r.doubled:,} "
                f"| {'all' if r.moved_at_end else 'not all'} | {ms(r.move_wait_max)} |"
            )
    return rows


def outage_table(base: Config) -> list[str]:
    """One shard down for a second: what the others serve, and what its tenants wait."""
    down = 0
    r = simulate(replace(base, outage=(down, 1.5, 2.5)))
    on_down = [t for t in range(base.tenants) if home_shard(t, base.shards) == down]
    others = [t for t in range(base.tenants) if home_shard(t, base.shards) != down]
    return [
        "| | |",
        "| --- | --: |",
        f"| other shards' jobs/s, the second before shard {down} went down "
        f"| {r.before_outage_rate:,.0f} |",
        f"| other shards' jobs/s, during its 1 s outage | {r.outage_rate:,.0f} |",
        f"| p99 wait of the other shards' jobs enqueued during the outage "
        f"| {ms(r.outage_other_p99)} ms |",
        f"| worst p99 wait over the whole run, of the other shards' tenants "
        f"| {ms(max(r.tenant_p99[t] for t in others))} ms |",
        f"| worst p99 wait of shard {down}'s {len(on_down)} tenants (jobs kept in producers' "
        f"outboxes) | {ms(max(r.tenant_p99[t] for t in on_down))} ms |",
        f"| jobs lost / doubled | {r.lost} / {r.doubled} |",
    ]


def skewed(seed: int = 1, duration: float = 4.0) -> Config:
    """The skewed case of docs/scaling.md: 4 shards, 3 workers (30k jobs/s between them),
    50 tenants (Zipf 1.1) offering 26k jobs/s, the hottest tenant moved half-way."""
    return Config(
        seed=seed,
        shards=4,
        workers=3,
        tenants=50,
        arrival_rate=26_000.0,
        duration=duration,
        move_tenant=0,
        move_at=duration / 2,
        warmup=min(0.5, duration / 4),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A discrete-event model of offload on shards.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    args = parser.parse_args(argv)
    duration = 2.0 if args.quick else 4.0
    base = skewed(args.seed, duration)
    print(f"seed {args.seed}\n")
    print(
        "Throughput against shard count (12k jobs/s offered per shard, tenants of equal rates):\n"
    )
    print("\n".join(scaling_table(base)))
    print("\nPolling load on each shard at 1k jobs/s per shard:\n")
    print("\n".join(polling_load_table(base)))
    print("\nPolling policy, the skewed case (4 shards, 3 workers, 50 tenants, Zipf 1.1):\n")
    print("\n".join(policy_table(base)))
    print("\nThe move of the hottest tenant half-way through the skewed case:\n")
    print("\n".join(move_table(base)))
    print("\nShard 0 down from 1.5 s to 2.5 s, the skewed case without the move:\n")
    print("\n".join(outage_table(replace(base, move_tenant=None))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
