"""Claim throughput with no dispatch policy in use: the before/after check of issue 5.

Fills a store with a backlog of plain jobs (bulk insert), then claims them in batches and
completes each batch, timing claims and completions apart. Only the store contract is used, so
the same script measures an older checkout of the package:

    python bench/claim_throughput.py --engine sqlite --rounds 5
    PYTHONPATH=/tmp/before python bench/claim_throughput.py --engine postgres

Prints one JSON line per round and a summary line with the medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from offload.store import open_store
from offload.store._contract import ClaimParams, Completion, NewJob

PG = "postgresql://postgres@127.0.0.1:5432/test"


def _url(engine: str, folder: str) -> tuple[str, str | None]:
    if engine == "sqlite":
        return f"sqlite:///{folder}/bench-{uuid.uuid4().hex[:8]}.db", None
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    return f"{PG}?schema={schema}", schema


def _drop(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _analyze(schema: str) -> None:
    """What autovacuum does soon after a bulk load: without it the planner, thinking the table
    empty, may sort the whole backlog for every claim (on any version of the claim)."""
    import psycopg

    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'ANALYZE "{schema}".offload_jobs')


def one_round(
    engine: str, backlog: int, claims: int, batch: int, folder: str, analyze: bool = True
) -> dict[str, float]:
    url, schema = _url(engine, folder)
    store = open_store(url)
    try:
        store.migrate()
        chunk = 5000
        started = time.perf_counter()
        for start in range(0, backlog, chunk):
            n = min(chunk, backlog - start)
            store.job_insert_many(
                [NewJob(kind="plain", queue="default", args={"i": start + i}) for i in range(n)]
            )
        insert_s = time.perf_counter() - started
        if schema and analyze:
            _analyze(schema)
        params = ClaimParams(["default"], batch, "bench", 600.0)
        claim_s = complete_s = 0.0
        taken = 0
        while taken < claims:
            t0 = time.perf_counter()
            jobs = store.job_claim(params)
            t1 = time.perf_counter()
            if not jobs:
                break
            store.job_complete_many([Completion(j.id, j.lease_token) for j in jobs])
            t2 = time.perf_counter()
            claim_s += t1 - t0
            complete_s += t2 - t1
            taken += len(jobs)
        return {
            "inserted_per_s": backlog / insert_s,
            "claimed": taken,
            "claims_per_s": taken / claim_s,
            "completes_per_s": taken / complete_s,
            "claim_complete_per_s": taken / (claim_s + complete_s),
        }
    finally:
        store.close()
        if schema:
            _drop(schema)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--claims", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--no-analyze", action="store_true", help="PostgreSQL: claim before statistics exist"
    )
    ns = parser.parse_args()
    import offload

    where = str(Path(offload.__file__).parent)
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(ns.rounds):
            r = one_round(ns.engine, ns.backlog, ns.claims, ns.batch, folder, not ns.no_analyze)
            results.append(r)
            print(json.dumps({"engine": ns.engine, "package": where, **r}), flush=True)
    summary = {
        key: round(statistics.median(r[key] for r in results), 1)
        for key in ("inserted_per_s", "claims_per_s", "completes_per_s", "claim_complete_per_s")
    }
    print(json.dumps({"engine": ns.engine, "package": where, "median": summary}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
