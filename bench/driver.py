"""Runs one scenario on one system, in a process of its own, and prints one JSON line.

`python -m bench.driver SYSTEM SCENARIO [--n N] [--chunk C] [--batch B] [--sizes ...]`.
The harness (`python -m bench run`) starts it with the right interpreter (oban's venv for oban)
and stops it, and so its workers, when it overruns.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import _io, _proc
from bench._config import DATA, pg_url
from bench._recorder import Tally
from bench.systems import CPUS, FACTORIES, Offload, System, recreate_database

LOGS = DATA / "logs"


def _log(system: str, scenario: str) -> Path:
    return LOGS / f"{system}-{scenario}-{int(time.time() * 1000)}.log"


def _start(sys_: System, scenario: str) -> list[Any]:
    log = _log(sys_.name, scenario)
    return [_proc.spawn(argv, log, env) for argv, env in sys_.workers()]


def enqueue(sys_: System, n: int, chunk: int, bulk: bool) -> dict[str, Any]:
    sys_.reset()
    start = time.perf_counter()
    if bulk:
        sys_.bulk(n, chunk)
    else:
        sys_.single(n)
    elapsed = time.perf_counter() - start
    queued = sys_.queued()
    ok = queued == n
    return {
        "ok": ok,
        "value": n / elapsed if ok else None,
        "unit": "jobs/s",
        "seconds": elapsed,
        "n": n,
        "queued": queued,
        "problem": "" if ok else f"{queued} of {n} jobs stored",
    }


def drain(sys_: System, n: int, chunk: int, kind: str = "noop") -> dict[str, Any]:
    """n queued jobs of `kind` drained by the workers; `io` jobs' round trips are counted."""
    sys_.reset()
    if kind == "io":
        _io.reset()
    sys_.bulk(n, chunk, kind)
    queued = sys_.queued()
    tally = Tally()
    tally.reset()
    spawned = time.time()
    procs = _start(sys_, "drain" if kind == "noop" else kind)
    try:
        waited = tally.wait(n, timeout=max(180.0, n / 100), stall=20.0)
        time.sleep(1.0)  # late duplicates (redeliveries) still count
    finally:
        _proc.stop(procs)
    result = _verdict(tally, n, spawned, {"queued_before": queued, **waited})
    return _io_checked(result) if kind == "io" else result


def _io_checked(result: dict[str, Any]) -> dict[str, Any]:
    """An `io` run is good only when every run made its round trip, once."""
    calls = _io.calls()
    result["io_calls"] = calls
    if result["ok"] and calls != result["runs"]:
        result.update(
            ok=False, value=None, problem=f"{calls} round trips for {result['runs']} runs"
        )
    return result


def io_limit(n: int, processes: int) -> dict[str, Any]:
    """The `io` body in a plain loop, no queue, in `processes` processes (job i in process
    i mod processes), recorded and timed as a drain is."""
    _io.reset()
    tally = Tally()
    tally.reset()
    spawned = time.time()
    log = _log("loop-io", "io")
    argv = [sys.executable, "-m", "bench.io_loop"]
    procs = [_proc.spawn([*argv, str(k), str(processes), str(n)], log) for k in range(processes)]
    try:
        waited = tally.wait(n, timeout=max(180.0, n / 100), stall=20.0)
        time.sleep(0.2)
    finally:
        _proc.stop(procs)
    extra = {"processes": processes, **waited}
    return _io_checked(_verdict(tally, n, spawned, extra))


def _verdict(tally: Tally, n: int, spawned: float, extra: dict[str, Any]) -> dict[str, Any]:
    unique, dups, runs = tally.unique(), tally.dups(), tally.runs()
    first, last = tally.span()
    lost = n - unique
    ok = lost == 0 and dups == 0 and runs == n
    problems = []
    if lost:
        problems.append(f"{lost} lost")
    if dups:
        problems.append(f"{dups} duplicated")
    span = last - first
    return {
        "ok": ok,
        "value": n / span if ok and span > 0 else None,
        "unit": "jobs/s",
        "seconds": span,
        "startup_seconds": first - spawned if first else None,
        "n": n,
        "runs": runs,
        "unique": unique,
        "lost": lost,
        "duplicated": dups,
        "problem": ", ".join(problems),
        **extra,
    }


def latency(sys_: System, count: int, gap: float) -> dict[str, Any]:
    sys_.reset()
    tally = Tally()
    tally.reset()
    procs = _start(sys_, "latency")
    try:
        for _ in range(3):  # warm-up jobs (i < 0): workers up, connections open
            sys_.send(-1)
        warm = tally.wait(3, timeout=120.0, stall=120.0, what="warm")
        if not warm["complete"]:
            return {"ok": False, "value": None, "problem": "workers never ran the warm-up jobs"}
        time.sleep(1.0)  # idle workers
        start = time.perf_counter()
        for k in range(count):
            pause = start + k * gap - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            sys_.send(k)
        waited = tally.wait(count, timeout=60.0, stall=20.0)
        time.sleep(0.5)
    finally:
        _proc.stop(procs)
    lats = sorted(x * 1000 for x in tally.latencies())
    result = _verdict(tally, count, 0.0, waited)
    result.update(value=None, unit="ms", startup_seconds=None, seconds=None)
    if lats:
        result.update(
            p50=_pct(lats, 50),
            p95=_pct(lats, 95),
            p99=_pct(lats, 99),
            max=lats[-1],
            mean=statistics.fmean(lats),
        )
        if result["ok"]:
            result["value"] = result["p50"]
    return result


def iteration(sys_: Offload, n: int, each: int) -> dict[str, Any]:
    """One job over n no-op items three ways, one after the other on idle workers: a plain
    loop (`items`), an iteration job that stores its cursor every 5 s (`iterate`, the default)
    and one that stores it after every item (`iterate_each`, over `each` items). Each run is
    timed by the store (finished_at − attempted_at); the figure is the cost per item above the
    plain loop, in µs."""
    sys_.reset()
    procs = _start(sys_, "iteration")
    spans: dict[str, float] = {}
    problems = []
    try:
        for kind, count in (("items", n), ("iterate", n), ("iterate_each", each)):
            job = sys_.job(kind).enqueue(count)
            deadline = time.monotonic() + max(120.0, count / 50)
            state, span = "", 0.0
            while time.monotonic() < deadline:
                state, span = sys_.run_span(job.id)
                if state in ("completed", "dead", "cancelled"):
                    break
                time.sleep(0.05)
            if state != "completed":
                problems.append(f"{kind} ended {state or 'never'}")
            spans[kind] = span
    finally:
        _proc.stop(procs)
    plain = spans.get("items", 0.0) / n
    default = (spans.get("iterate", 0.0) / n - plain) * 1e6
    every = (spans.get("iterate_each", 0.0) / each - plain) * 1e6
    ok = not problems
    return {
        "ok": ok,
        "value": default if ok else None,
        "unit": "µs per item above a plain loop",
        "n": n,
        "each_n": each,
        "plain_us": plain * 1e6,
        "plain_ms": spans.get("items", 0.0) * 1000,
        "default_us": default,
        "each_us": every,
        "plain_seconds": spans.get("items"),
        "iterate_seconds": spans.get("iterate"),
        "iterate_each_seconds": spans.get("iterate_each"),
        "problem": ", ".join(problems),
    }


def chain(sys_: System, count: int, length: int, chunk: int) -> dict[str, Any]:
    """`count` chains of `length` steps against as many plain jobs, both queued before the
    workers start and drained (the `drain` measurement); the figure is the chains' jobs/s,
    beside the plain jobs' and the cost per step above a plain job."""
    n = count * length
    plain = drain(sys_, n, chunk)
    sys_.reset()
    sys_.chains(count, length)
    tally = Tally()
    tally.reset()
    spawned = time.time()
    procs = _start(sys_, "chain")
    try:
        waited = tally.wait(n, timeout=max(180.0, n / 50), stall=20.0)
        time.sleep(1.0)
    finally:
        _proc.stop(procs)
    result = _verdict(tally, n, spawned, {"chains": count, "length": length, **waited})
    result["plain_rate"] = plain["value"]
    if not plain["ok"]:
        result.update(ok=False, value=None, problem=f"plain jobs: {plain['problem']}")
    if result["ok"]:
        result["step_overhead_us"] = (1 / result["value"] - 1 / plain["value"]) * 1e6
    return result


def events(sys_: System, n: int) -> dict[str, Any]:
    """offload: `bench/events.py`'s round (publish single and bulk, fan-out to 2
    subscriptions, a group reading) on a fresh store; a peer: its plain inserts, single
    (n/5 jobs) and bulk (n), which are what its users publish with."""
    if isinstance(sys_, Offload):
        from bench import events as ev

        if sys_.backend == "postgres":
            recreate_database(ev.DB)
        with tempfile.TemporaryDirectory(dir=DATA) as folder:
            out = ev.one_round(sys_.backend, n, folder, pg=pg_url(ev.DB))
        return {"ok": True, "value": out["bulk_events_per_s"], "unit": "events/s", **out}
    single = enqueue(sys_, max(n // 5, 1), n, bulk=False)
    bulk = enqueue(sys_, n, 1000, bulk=True)
    ok = single["ok"] and bulk["ok"]
    return {
        "ok": ok,
        "value": bulk["value"],
        "unit": "jobs/s",
        "single_events_per_s": single["value"],
        "bulk_events_per_s": bulk["value"],
        "problem": "; ".join(p for p in (single["problem"], bulk["problem"]) if p),
    }


def _pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile of sorted values."""
    k = max(0, min(len(values) - 1, round(p / 100 * len(values) + 0.5) - 1))
    return values[k]


def drain_ack(sys_: Offload, n: int, chunk: int) -> dict[str, Any]:
    """offload's drain of jobs that record nothing, counted at the ack (completed rows)."""
    sys_.reset()
    sys_.bulk(n, chunk, kind="bare")
    procs = _start(sys_, "drain-ack")
    deadline = time.monotonic() + max(180.0, n / 100)
    try:
        while time.monotonic() < deadline and sys_.unfinished() > 0:
            time.sleep(0.25)
    finally:
        _proc.stop(procs)
    done, first, last = sys_.completed_span()
    ok = done == n
    span = last - first
    return {
        "ok": ok,
        "value": n / span if ok and span > 0 else None,
        "unit": "jobs/s",
        "seconds": span,
        "n": n,
        "completed": done,
        "problem": "" if ok else f"{n - done} not completed",
    }


def loop(name: str, n: int, batch: int) -> dict[str, Any]:
    from bench import baseline

    out = (
        baseline.sqlite_loop(n, batch)
        if name == "loop-sqlite"
        else baseline.postgres_loop(n, batch)
    )
    ok = out["completed"] == n
    return {
        "ok": ok,
        "value": n / out["seconds"] if ok else None,
        "unit": "jobs/s",
        "problem": "" if ok else f"{n - out['completed']} not completed",
        **out,
    }


def backlog(sys_: Offload, size: int, chunk: int, probe: int) -> dict[str, Any]:
    """Fill a backlog in steps (0, size/5, size) and at each step measure single and bulk
    enqueue, the claim rate of the worker (jobs that record nothing, counted at the ack) and the
    worker processes' RSS."""
    sys_.reset()
    levels = [0, size // 5, size]
    points = []
    filled = 0
    for level in levels:
        point: dict[str, Any] = {"level": level}
        if level > filled:
            start = time.perf_counter()
            _fill(sys_, filled, level - filled, chunk)
            point["fill_rate"] = (level - filled) / (time.perf_counter() - start)
            filled = level
        single_n = 2000
        start = time.perf_counter()
        bare = sys_.job("bare")
        for i in range(single_n):
            bare.enqueue(i)
        point["single_rate"] = single_n / (time.perf_counter() - start)
        start = time.perf_counter()
        _fill(sys_, 0, 50_000, chunk)
        point["bulk_rate"] = 50_000 / (time.perf_counter() - start)
        point.update(_claim_rate(sys_, probe))
        points.append(point)
        print(json.dumps({"progress": point}), file=sys.stderr, flush=True)
    base = points[0]["claim_rate"] or 0
    top = points[-1]["claim_rate"] or 0
    return {
        "ok": all(p["claim_ok"] for p in points),
        "value": top / base if base else None,
        "unit": "claim rate at the largest backlog ÷ at 0",
        "points": points,
        "size": size,
        "problem": "" if all(p["claim_ok"] for p in points) else "claim probe did not finish",
    }


def _fill(sys_: Offload, start: int, count: int, chunk: int) -> None:
    bare = sys_.job("bare")
    app = sys_.app
    end = start + count
    for lo in range(start, end, chunk):
        app.enqueue_many([bare.prepare(i) for i in range(lo, min(lo + chunk, end))])


def _claim_rate(sys_: Offload, probe: int) -> dict[str, Any]:
    since = time.time()
    procs = _start(sys_, "backlog")
    rss: dict[int, float] = {}
    deadline = time.monotonic() + 90.0  # a slow claim is measured on what it did in 90 s
    try:
        while time.monotonic() < deadline:
            for p in procs:
                for pid in _proc.group_pids(p.pid):
                    rss[pid] = max(rss.get(pid, 0.0), _proc.rss_mb(pid))
            done, _, _ = sys_.completed_span(since)
            if done >= probe:
                break
            time.sleep(0.25)
    finally:
        _proc.stop(procs)
    done, first, last = sys_.completed_span(since)
    return {
        "claim_ok": done > 0,
        "probe_complete": done >= probe,
        "claim_rate": done / (last - first) if last > first else None,
        "claimed": done,
        "rss_max_mb": max(rss.values(), default=0.0),
        "rss_sum_mb": sum(rss.values()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.driver")
    parser.add_argument("system")
    parser.add_argument("scenario")
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--chunk", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--gap", type=float, default=0.02)
    parser.add_argument("--probe", type=int, default=20_000)
    parser.add_argument("--each", type=int, default=2_000, help="iterate_each items")
    parser.add_argument("--length", type=int, default=10, help="steps per chain")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # atexit then reaps the workers
    DATA.mkdir(parents=True, exist_ok=True)
    lock = open(DATA / "driver.lock", "w")  # noqa: SIM115 - held until the process exits
    fcntl.flock(lock, fcntl.LOCK_EX)  # one scenario at a time: they share files and databases
    code = os.environ.get("BENCH_CODE_ROOT")
    if code and not args.system.startswith(("loop-", "oban")):
        import offload

        if not Path(offload.__file__).resolve().is_relative_to(Path(code).resolve()):
            sys.exit(f"offload was imported from {offload.__file__}, not from {code}")

    if args.system == "loop-io":
        result = io_limit(args.n, CPUS)
    elif args.system.startswith("loop-"):
        result = loop(args.system, args.n, args.batch)
    else:
        sys_ = FACTORIES[args.system]()
        try:
            if args.scenario == "enqueue":
                result = enqueue(sys_, args.n, args.chunk, bulk=False)
            elif args.scenario == "bulk":
                result = enqueue(sys_, args.n, args.chunk, bulk=True)
            elif args.scenario == "drain":
                result = drain(sys_, args.n, args.chunk)
            elif args.scenario == "io":
                result = drain(sys_, args.n, args.chunk, kind="io")
            elif args.scenario == "iteration":
                assert isinstance(sys_, Offload)
                result = iteration(sys_, args.n, args.each)
            elif args.scenario == "chain":
                result = chain(sys_, args.n // args.length, args.length, args.chunk)
            elif args.scenario == "events":
                result = events(sys_, args.n)
            elif args.scenario == "latency":
                result = latency(sys_, args.n, args.gap)
            elif args.scenario == "drain-ack":
                assert isinstance(sys_, Offload)
                result = drain_ack(sys_, args.n, args.chunk)
            elif args.scenario == "backlog":
                assert isinstance(sys_, Offload)
                result = backlog(sys_, args.n, args.chunk, args.probe)
            else:
                parser.error(f"unknown scenario {args.scenario!r}")
        finally:
            sys_.close()
    if not args.system.startswith(("loop-", "oban")):
        import offload

        result["offload_file"] = offload.__file__
    print(json.dumps({"system": args.system, "scenario": args.scenario, **result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
