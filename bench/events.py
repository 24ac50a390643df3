"""Events: publish (single and bulk) and fan-out to subscription jobs, on one engine.

Each round makes a fresh store with a topic of 4 partitions and times, in this process:

- `single`: `topic.publish(...)`, one call (one transaction) per event;
- `bulk`: `topic.publish_many(...)`, 1,000 events per call;
- the same two with 2 subscriptions declared, which make 2 jobs per event in the publish's
  transaction (`fanout_*`: events/s and subscription jobs/s);
- `read`: a consumer group's reading through the store: `event_read` of 500 events and the
  fenced offset commit, per batch (events/s).

    python bench/events.py --engine sqlite --rounds 3
    python bench/events.py --engine postgres --events 20000

Prints one JSON line per round and a summary line with the medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from typing import Any

from offload import Event, Offload
from offload.store._contract import ClaimParams

PG = "postgresql://postgres@127.0.0.1:5432/test"
DB = "bench_events"  # the database `python -m bench run --scenarios events` makes and uses


def _url(engine: str, folder: str, pg: str) -> tuple[str, str | None]:
    if engine == "sqlite":
        return f"sqlite:///{folder}/events-{uuid.uuid4().hex[:8]}.db", None
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    return f"{pg}?schema={schema}", schema


def _drop(schema: str, pg: str) -> None:
    import psycopg

    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _app(url: str, subscriptions: int) -> Offload:
    app = Offload(url)
    topic = app.topic("orders", partitions=4)
    for i in range(subscriptions):
        app.subscribe(topic, name=f"sub-{i}")(lambda event: None)
    return app


def _publish(app: Offload, n: int, bulk: int) -> float:
    topic = app.topics["orders"]
    topic.ensure()
    started = time.perf_counter()
    if bulk <= 1:
        for i in range(n):
            topic.publish({"i": i}, key=f"customer-{i % 100}")
    else:
        for start in range(0, n, bulk):
            count = min(bulk, n - start)
            keys = [f"customer-{i % 100}" for i in range(start, start + count)]
            topic.publish_many([{"i": i} for i in range(start, start + count)], keys=keys)
    return time.perf_counter() - started


def _read(app: Offload, n: int) -> float:
    """A group reading every event through the store: read a batch, commit its offset."""
    store = app.store
    topic = app.topics["orders"]

    @app.consumer(topic, group="bench")
    def bench(events: list[Event]) -> None:
        return None

    consumer = app.consumers[("orders", "bench")]
    consumer.ensure_started()
    held = store.job_claim(ClaimParams(["default"], 100, "bench", 600.0))
    leases = {j.args["partition"]: j for j in held if j.kind == consumer.kind}
    started = time.perf_counter()
    read = 0
    for part, job in sorted(leases.items()):
        at = 0
        while True:
            batch = store.event_read("orders", part, at - 1, 500)
            if not batch:
                break
            last = batch[-1].position + 1
            assert store.group_commit("orders", "bench", part, job.id, job.lease_token, at, last)
            read += len(batch)
            at = last
    assert read == n, (read, n)
    return time.perf_counter() - started


def one_round(engine: str, n: int, folder: str, pg: str = PG) -> dict[str, float]:
    """One round's figures; PostgreSQL stores go in schemas of their own in `pg`."""
    out: dict[str, float] = {}
    for subs in (0, 2):
        for label, bulk in (("single", 1), ("bulk", 1000)):
            count = n if bulk > 1 else max(n // 5, 1)
            url, schema = _url(engine, folder, pg)
            app = _app(url, subs)
            try:
                seconds = _publish(app, count, bulk)
                name = label if subs == 0 else f"fanout_{label}"
                out[f"{name}_events_per_s"] = count / seconds
                if subs:
                    out[f"{name}_jobs_per_s"] = count * subs / seconds
                if subs == 0 and bulk > 1:
                    out["read_events_per_s"] = count / _read(app, count)
            finally:
                app.close()
                if schema:
                    _drop(schema, pg)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--events", type=int, default=20_000, help="events of the bulk runs")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        for r in range(args.rounds):
            result = one_round(args.engine, args.events, folder)
            rounds.append(result)
            print(
                json.dumps(
                    {"round": r, "engine": args.engine, **{k: round(v) for k, v in result.items()}}
                )
            )
    summary = {k: round(statistics.median(r[k] for r in rounds)) for k in rounds[0]}
    print(json.dumps({"engine": args.engine, "median": summary}))


if __name__ == "__main__":
    main()
