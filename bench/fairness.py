"""The dispatch policy in numbers: tenant fairness, shares by weight, deadlines, adaptive limits.

Runs against a fresh store through the store contract (what workers do), counting claims, not
time:

    python bench/fairness.py                       # SQLite in a temp folder
    python bench/fairness.py --engine postgres     # postgresql://postgres@127.0.0.1:5432/test
    python bench/fairness.py --backlog 100000      # tenant A's backlog (default 100,000)

1. tenant A has `--backlog` jobs queued, tenant B then enqueues 1,000 of the same type: how
   many claims B waits for its first job, and B's share of the next 200 claims;
2. two types both flooded, weight 1 and weight 3: their shares of 2,000 claims;
3. a 1 s SLO job and a 1 h SLO job enqueued together behind a backlog: which is claimed first;
4. an adaptive concurrency limit in front of a downstream that throttles above 6 requests at a
   time: the limit's value round by round (AIMD settles into a sawtooth under the capacity).
"""

from __future__ import annotations

import argparse
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from offload.dispatch._limits import CONCURRENCY, LimitSpec
from offload.dispatch._ordering import stride
from offload.store import open_store
from offload.store._contract import ClaimedJob, ClaimParams, Completion, Failure, NewJob, Store
from offload.store._dispatch import LimitReport

PG = "postgresql://postgres@127.0.0.1:5432/test"


@contextmanager
def fresh_store(engine: str) -> Iterator[Store]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/fair.db" if engine == "sqlite" else f"{PG}?schema={schema}"
        store = open_store(url)
        store.migrate()
        try:
            yield store
        finally:
            store.close()
            if engine == "postgres":
                import psycopg

                with psycopg.connect(PG, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def bulk(store: Store, n: int, **fields: object) -> None:
    for start in range(0, n, 5000):
        jobs = [NewJob(queue="q", args={}, **fields) for _ in range(min(5000, n - start))]  # type: ignore[arg-type]
        store.job_insert_many(jobs)


def take(store: Store, n: int = 1) -> list[ClaimedJob]:
    return store.job_claim(ClaimParams(["q"], n, "bench", 600.0))


def tenant_of(store: Store, job: ClaimedJob) -> str | None:
    record = store.job_get(job.id)
    return None if record is None else record.tenant


def tenants(engine: str, backlog: int) -> None:
    with fresh_store(engine) as store:
        bulk(store, backlog, kind="sync", tenant="A")
        for _ in range(10):
            take(store, 10)  # workers are busy with A's backlog
        bulk(store, 1000, kind="sync", tenant="B")
        wait = 0
        while tenant_of(store, take(store)[0]) != "B":
            wait += 1
        shares = Counter(tenant_of(store, take(store)[0]) for _ in range(200))
        print(
            f"1. tenant A {backlog:,} queued, B enqueues 1,000: B's first job after {wait} other "
            f"claim(s); next 200 claims A={shares['A']} B={shares['B']}"
        )


def weights(engine: str) -> None:
    with fresh_store(engine) as store:
        bulk(store, 10_000, kind="light", stride=stride(1.0, 1.0))
        bulk(store, 10_000, kind="heavy", stride=stride(1.0, 3.0))
        taken: Counter[str] = Counter()
        for _ in range(200):
            taken.update(j.kind for j in take(store, 10))
        total = sum(taken.values())
        print(
            f"2. weight 1 vs weight 3, both flooded: of {total} claims light={taken['light']} "
            f"({taken['light'] / total:.1%}) heavy={taken['heavy']} ({taken['heavy'] / total:.1%})"
        )


def deadlines(engine: str) -> None:
    with fresh_store(engine) as store:
        bulk(store, 1000, kind="report", slo=3600.0)
        hour = store.job_insert_many([NewJob(kind="hourly", queue="q", args={}, slo=3600.0)])
        second = store.job_insert_many([NewJob(kind="urgent", queue="q", args={}, slo=1.0)])
        first = take(store)[0]
        which = {hour[0].id: "the 1 h job", second[0].id: "the 1 s job"}.get(first.id, first.kind)
        print(f"3. 1 s and 1 h SLO jobs behind 1,000 queued: first claimed is {which}")


def adaptive(engine: str, capacity: int = 6, rounds: int = 30) -> None:
    spec = LimitSpec(
        concurrency=2,
        adapt_target=CONCURRENCY,
        adapt_min=1.0,
        adapt_max=20.0,
        adapt_step=1.0,
        adapt_factor=0.5,
        adapt_cooldown=0.0,
    )
    with fresh_store(engine) as store:
        bulk(store, 2000, kind="call", limit_key="partner", limit=spec)
        trace = []
        for _ in range(rounds):
            running = take(store, 50)  # as many as the limit lets a round start
            value = next(x.concurrency for x in store.limit_list() if x.key == "partner")
            trace.append(f"{value}")
            over = len(running) > capacity  # the downstream pushes back above its capacity
            done = [Completion(j.id, j.lease_token) for j in running[:capacity]]
            pushed = [Failure(j.id, j.lease_token, "429", "", 3600.0) for j in running[capacity:]]
            store.job_complete_many(done)
            store.job_fail_many(pushed)
            store.limit_report([LimitReport("partner", ok=len(done), throttled=int(over))])
        print(
            f"4. adaptive concurrency (start 2, floor 1, ceiling 20) before a downstream of "
            f"capacity {capacity}, round by round: {' '.join(trace)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--backlog", type=int, default=100_000)
    ns = parser.parse_args()
    print(f"engine: {ns.engine}")
    tenants(ns.engine, ns.backlog)
    weights(ns.engine)
    deadlines(ns.engine)
    adaptive(ns.engine)


if __name__ == "__main__":
    main()
