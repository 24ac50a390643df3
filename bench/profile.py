"""Profiles offload's hot paths with py-spy: single enqueue, bulk enqueue, and one worker
process draining no-op jobs, on SQLite and PostgreSQL.

Writes the collapsed stacks (`bench/results/profile-<path>-<engine>.txt.raw`, open them with
speedscope or flamegraph.pl) and a summary per profile (`profile-<path>-<engine>.md`): the
frames with the most samples, by self time and by inclusive time, with file:line.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench import _proc
from bench._config import CODE, RESULTS
from bench.systems import Offload

RATE = 250  # samples per second
# py-spy counts threads blocked in these frames as active; they are idle waits, left out.
IDLE = (
    "Condition.wait (threading.py",
    "Thread._wait_for_tstate_lock (threading.py",
    "Executor._serve (offload/worker/_executor.py:124)",  # a job thread waiting for work
    "_DataVersionListener.wait (offload/store/sqlite/_engine.py:88)",  # its poll sleep
    "BackgroundLoop._run (offload/_loop.py:50)",
)

ENQUEUE = """
import sys, time
from dataclasses import replace
from bench.apps import offload_app
app = offload_app.app
app.config = replace(app.config, url=sys.argv[1])
noop = app.jobs["bare"]
n, how = int(sys.argv[2]), sys.argv[3]
app.store
t = time.perf_counter()
if how == "single":
    for i in range(n):
        noop.enqueue(i)
else:
    for lo in range(0, n, 10_000):
        app.enqueue_many([noop.prepare(i) for i in range(lo, min(lo + 10_000, n))])
print(f"{how}: {n / (time.perf_counter() - t):,.0f} jobs/s under the profiler")
"""


def _summarize(raw: Path, title: str, top: int = 25) -> str:
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = idle = 0
    for line in raw.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_s)
        frames = stack.split(";")
        if frames[-1].startswith(IDLE):
            idle += count
            continue
        total += count
        self_time[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    own = [(f, c) for f, c in inclusive.items() if "offload/" in f or "bench/" in f]
    own.sort(key=lambda x: -x[1])
    lines = [
        f"## {title}",
        "",
        f"{total} busy samples at {RATE}/s ({idle} samples of idle waits left out).",
        "",
    ]
    lines += ["Self time (the frame on top of the stack):", "", "| % | frame |", "|--:|---|"]
    for frame, count in self_time.most_common(top):
        lines.append(f"| {100 * count / total:.1f} | `{frame}` |")
    lines += ["", "Inclusive time, offload frames:", "", "| % | frame |", "|--:|---|"]
    for frame, count in own[:top]:
        lines.append(f"| {100 * count / total:.1f} | `{frame}` |")
    return "\n".join(lines) + "\n"


def _pyspy(args: list[str], out: Path) -> None:
    cmd = ["py-spy", "record", "-r", str(RATE), "-f", "raw", "-o", str(out), *args]
    subprocess.run(cmd, cwd=CODE, env={**os.environ, "PYTHONPATH": str(CODE)}, check=True)


def profile_enqueue(system: Offload, how: str, n: int) -> str:
    system.reset()
    system.close()
    raw = RESULTS / f"profile-enqueue-{how}-{system.backend}.txt.raw"
    _pyspy(["--", sys.executable, "-c", ENQUEUE, system.url, str(n), how], raw)
    return _summarize(raw, f"{how} enqueue of {n:,} jobs, offload on {system.backend}")


def profile_drain(system: Offload, n: int) -> str:
    system.reset()
    system.bulk(n, 10_000, kind="bare")
    system.close()
    raw = RESULTS / f"profile-drain-{system.backend}.txt.raw"
    argv = [sys.executable, "-m", "offload", "worker", "bench.apps.offload_app:app"]
    argv += ["--url", system.url, "--processes", "1", "--concurrency", "32"]
    worker = _proc.spawn(argv, RESULTS / "profile-worker.log")
    try:
        time.sleep(0.5)
        spy = subprocess.Popen(
            ["py-spy", "record", "-r", str(RATE), "-f", "raw", "-o", str(raw)]
            + ["--pid", str(worker.pid)],
            cwd=CODE,
        )
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and system.unfinished() > 0:
            time.sleep(0.2)
        spy.send_signal(signal.SIGINT)  # py-spy writes what it sampled on Ctrl-C
        spy.wait(30)
    finally:
        _proc.stop([worker])
    done, first, last = system.completed_span()
    rate = done / (last - first) if last > first else 0
    title = f"drain of {n:,} no-op jobs by 1 worker process (-c 32) on {system.backend}"
    return _summarize(raw, f"{title}: {rate:,.0f} jobs/s under the profiler")


def resummarize() -> None:
    """Remake the summaries from the raw stacks of the last profile."""
    for backend in ("sqlite", "postgres"):
        parts = []
        for name in ("enqueue-single", "enqueue-bulk", "drain"):
            raw = RESULTS / f"profile-{name}-{backend}.txt.raw"
            if raw.exists():
                parts.append(_summarize(raw, f"{name} on {backend}"))
        (RESULTS / f"profile-{backend}.md").write_text("\n".join(parts))


def main(n: int) -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    for backend in ("sqlite", "postgres"):
        system = Offload(backend)
        parts = [
            profile_enqueue(system, "single", min(n, 20_000)),
            profile_enqueue(system, "bulk", n * 2),
            profile_drain(system, n),
        ]
        out = RESULTS / f"profile-{backend}.md"
        out.write_text("\n".join(parts))
        print(f"wrote {out}")
    return 0
