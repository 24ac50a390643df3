"""`python -m bench run|plot|profile`: the benchmark harness (see bench/README.md)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import report
from bench._config import DATA, RESULTS, ROOT
from bench.systems import FACTORIES, python_for

SCENARIOS = ["enqueue", "bulk", "drain", "io", "latency", "baseline"]
# The new features' cost, offload against the nearest peer that has the feature: on request.
FEATURES = ["iteration", "chain", "events"]
FEATURE_PEERS = {"iteration": [], "chain": ["celery"], "events": ["pgqueuer", "procrastinate"]}
SIZES = {"enqueue": 20_000, "bulk": 100_000, "drain": 20_000, "io": 20_000, "latency": 200}
OFFLOAD = ["offload-sqlite", "offload-postgres"]


def _driver(system: str, scenario: str, args: list[str], timeout: float) -> dict[str, Any]:
    """One driver process; its JSON line, or a failure record."""
    cmd = [python_for(system), "-m", "bench.driver", system, scenario, *args]
    code = os.environ.get("BENCH_CODE_ROOT", str(ROOT))
    env = {**os.environ, "PYTHONPATH": code}
    started = time.time()
    proc = subprocess.Popen(
        cmd,
        cwd=code,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)  # the driver reaps its workers on SIGTERM
        try:
            out, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        return {"ok": False, "value": None, "problem": f"timed out after {timeout:.0f}s"}
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (err or out).strip().splitlines()[-3:]
        return {"ok": False, "value": None, "problem": "driver failed: " + " | ".join(tail)}
    result: dict[str, Any] = json.loads(lines[-1])
    result["wall"] = time.time() - started
    return result


def _plan(args: argparse.Namespace) -> list[tuple[str, str, list[str], float]]:
    systems = args.systems.split(",") if args.systems else list(FACTORIES)
    unknown = [s for s in systems if s not in FACTORIES]
    if unknown:
        sys.exit(f"unknown systems {unknown}; known: {', '.join(FACTORIES)}")
    scenarios = args.scenarios.split(",") if args.scenarios else list(SCENARIOS)
    if args.backlog and "backlog" not in scenarios:
        scenarios.append("backlog")
    steps: list[tuple[str, str, list[str], float]] = []
    for scenario in scenarios:
        if scenario == "baseline":
            n = str(SIZES["drain"] * 5)
            for loop in ("loop-sqlite", "loop-postgres"):
                steps.append((loop, "loop", ["--n", n, "--batch", str(args.loop_batch)], 300))
            for s in systems:
                if s in OFFLOAD:
                    steps.append((s, "drain-ack", ["--n", n], 600))
        elif scenario == "io":
            n = str(SIZES["io"])
            steps.append(("loop-io", "io", ["--n", n], 300))  # the body's own limit
            for s in systems:
                steps.append((s, "io", ["--n", n], 900))
        elif scenario in FEATURES:
            for s in systems:
                if s in OFFLOAD or s in FEATURE_PEERS[scenario]:
                    steps.append((s, scenario, _feature_args(scenario, args.quick), 900))
        elif scenario == "backlog":
            size = args.backlog_size or (200_000 if args.quick else 5_000_000)
            for s in systems:
                if s in OFFLOAD:
                    steps.append((s, "backlog", ["--n", str(size)], 7200))
        elif scenario in SIZES:
            for s in systems:
                steps.append((s, scenario, ["--n", str(SIZES[scenario])], 900))
        else:
            known = ", ".join([*SCENARIOS, "backlog", *FEATURES])
            sys.exit(f"unknown scenario {scenario!r}; known: {known}")
    return steps


def _feature_args(scenario: str, quick: bool) -> list[str]:
    """The driver arguments of a feature scenario (smaller with --quick)."""
    if scenario == "iteration":  # items of the plain and default jobs; of the every-item one
        return ["--n", "50000" if quick else "200000", "--each", "1000" if quick else "2000"]
    if scenario == "chain":  # chains of 10 steps; as many plain jobs
        return ["--n", "2000" if quick else "5000", "--length", "10"]
    return ["--n", "5000" if quick else "20000"]  # events: bulk-published events


def snapshot(ref: str) -> tuple[str, Path]:
    """offload/ as committed at `ref`, beside a link to this bench/: other developers' edits
    in progress in the work tree then change nothing in a run."""
    sha = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", ref], capture_output=True, text=True, check=True
    ).stdout.strip()
    folder = DATA / f"src-{sha[:12]}"
    if not (folder / "offload").is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", sha, "offload"], capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    link = folder / "bench"
    if not link.exists():
        link.symlink_to(ROOT / "bench")
    return sha, folder


def run(args: argparse.Namespace) -> int:
    runs = args.runs or (1 if args.quick else 3)
    offload_code = "work tree"
    if args.offload_ref:
        sha, folder = snapshot(args.offload_ref)
        os.environ["BENCH_CODE_ROOT"] = str(folder)
        offload_code = f"commit {sha}"
    else:
        offload_code += (
            " at "
            + subprocess.run(
                ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                capture_output=True,
                text=True,
            ).stdout.strip()
        )
    steps = _plan(args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    raw: list[dict[str, Any]] = []
    partial = RESULTS / f"results-{stamp}.json.tmp"
    for k in range(runs):
        for system, scenario, extra, timeout in steps:
            if scenario == "backlog" and k > 0:
                continue  # one backlog run: it takes long, and its figure is a curve
            print(f"[run {k + 1}/{runs}] {scenario:9} {system:17}", end=" ", flush=True)
            result = _driver(system, scenario, extra, timeout)
            result.update(system=system, scenario=scenario, run=k)
            raw.append(result)
            print(report.brief(result), flush=True)
            partial.write_text(json.dumps(raw))
    doc = {
        "started": stamp,
        "quick": args.quick,
        "runs": runs,
        "offload_code": offload_code,
        "machine": report.machine(),
        "configs": report.configs(),
        "raw": raw,
    }
    doc["summary"] = report.summarize(raw)
    out = RESULTS / f"results-{stamp}.json"
    out.write_text(json.dumps(doc, indent=1))
    partial.unlink(missing_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(doc, indent=1))
    table = report.markdown(doc)
    (RESULTS / "latest.md").write_text(table)
    report.plot(doc, RESULTS / "latest.png")
    if not args.no_readme:
        report.update_readme(table, ROOT / "bench" / "README.md")
    print(table)
    print(f"wrote {out}, {RESULTS / 'latest.md'}, {RESULTS / 'latest.png'}")
    return 0


def _load(path: Path) -> dict[str, Any]:
    doc = json.loads(path.read_text())
    if isinstance(doc, list):  # the partial record of a run still going (or killed)
        stamp = path.name.removeprefix("results-").split(".")[0]
        runs = 1 + max(r["run"] for r in doc)
        doc = {"started": stamp + " (partial)", "quick": False, "runs": runs, "raw": doc}
        doc.update(machine=report.machine(), configs=report.configs())
    return dict(doc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run the benchmarks and write bench/results/")
    p.add_argument("--quick", action="store_true", help="1 run per figure, small backlog")
    p.add_argument("--systems", help=f"comma-separated subset of: {', '.join(FACTORIES)}")
    p.add_argument(
        "--scenarios",
        help=f"comma-separated subset of: {', '.join(SCENARIOS)} (default), backlog, "
        + ", ".join(FEATURES),
    )
    p.add_argument("--runs", type=int, help="runs per figure (default 3, 1 with --quick)")
    p.add_argument("--backlog", action="store_true", help="also run the long backlog scenario")
    p.add_argument("--backlog-size", type=int, help="backlog jobs (default 5,000,000)")
    p.add_argument("--loop-batch", type=int, default=500, help="bare SQL loop claim batch")
    p.add_argument(
        "--offload-ref",
        help="benchmark offload as committed at this git ref (default: the work tree)",
    )
    q = sub.add_parser("plot", help="remake the tables and plot from a results JSON")
    q.add_argument("json", nargs="*", default=[str(RESULTS / "latest.json")])
    for sp in (p, q):
        sp.add_argument(
            "--no-readme", action="store_true", help="leave bench/README.md's table as it is"
        )
    r = sub.add_parser("profile", help="profile offload's enqueue and drain with py-spy")
    r.add_argument("--n", type=int, default=50_000)
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args)
    if args.command == "plot":
        docs = [_load(Path(name)) for name in args.json]
        doc = docs[0]
        for later in docs[1:]:  # runs add up (a backlog curve: the latest counts)
            doc["raw"] = doc["raw"] + later["raw"]
            doc["started"] += " + " + later["started"]
        doc["summary"] = report.summarize(doc["raw"])
        if len(docs) > 1:
            (RESULTS / "latest.json").write_text(json.dumps(doc, indent=1))
        table = report.markdown(doc)
        (RESULTS / "latest.md").write_text(table)
        report.plot(doc, RESULTS / "latest.png")
        if not args.no_readme:
            report.update_readme(table, ROOT / "bench" / "README.md")
        print(table)
        return 0
    from bench import profile

    return profile.main(args.n)


if __name__ == "__main__":
    sys.exit(main())
