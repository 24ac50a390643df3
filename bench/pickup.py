"""Where an idle SQLite worker's pickup time goes: the before/after check of issue 11.

One worker process (`offload worker --processes 1 --concurrency 32`) waits idle; jobs are
enqueued one at a time, `--gap` apart (open loop, as the latency scenario does). From each
job's row and its result it splits the pickup into: the producer's call until its insert
(`inserted_at`), the insert until the claim (`attempted_at`, taken inside the claim's
transaction) and the claim until the job's first line (the job returns `time.time()`). Only
the app API and the job table are used, so it measures an older checkout too:

    python -m bench.pickup --rounds 3
    cd bench/.data/src-613ed5350dbe && PYTHONPATH=. python -m bench.pickup --rounds 3

(`python -m bench run --offload-ref REF` makes those folders: offload/ as of REF beside a link
to this bench/.) Prints one line per round.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench._config import sqlite_file


def _reset(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def one_round(n: int, gap: float) -> dict[str, float]:
    from bench.apps import pickup_app

    path = sqlite_file("pickup")
    url = f"sqlite:///{path}"
    app = pickup_app.app
    app.close()
    _reset(path)
    from dataclasses import replace

    app.config = replace(app.config, url=url)
    stamp = app.jobs["stamp"]
    argv = [sys.executable, "-m", "offload", "worker", "bench.apps.pickup_app:app", "--url", url]
    argv += ["--processes", "1", "--concurrency", "32", "--poll-interval", "1"]
    worker = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    db = sqlite3.connect(path)

    def unfinished() -> int:
        sql = "SELECT count(*) FROM offload_jobs WHERE state IN ('available', 'running')"
        return int(db.execute(sql).fetchone()[0])

    try:
        for _ in range(3):  # warm-up: the worker is up and has claimed once
            stamp.enqueue(-1)
        while unfinished():
            time.sleep(0.05)
        time.sleep(1.0)  # idle
        since, sent = time.time(), {}
        start = time.perf_counter()
        for k in range(n):
            pause = start + k * gap - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            sent[k] = time.time()
            stamp.enqueue(k)
        while unfinished():
            time.sleep(0.01)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
        app.close()
    rows = db.execute(
        "SELECT args, inserted_at, attempted_at, result FROM offload_jobs WHERE inserted_at >= ?",
        (since,),
    ).fetchall()
    db.close()
    parts: dict[str, list[float]] = {"call→insert": [], "insert→claim": [], "claim→start": []}
    for args, inserted, attempted, result in rows:
        decoded = json.loads(args)
        k = decoded["i"] if isinstance(decoded, dict) else decoded[0]
        began = float(json.loads(result))
        parts["call→insert"].append(inserted - sent[k])
        parts["insert→claim"].append(attempted - inserted)
        parts["claim→start"].append(began - attempted)
    out = {name: 1000 * statistics.median(values) for name, values in parts.items()}
    out["sum"] = sum(out.values())
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--gap", type=float, default=0.02)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    import offload

    print(f"offload from {Path(offload.__file__).parent}")
    for _ in range(args.rounds):
        medians = one_round(args.n, args.gap)
        print("  ".join(f"{name} {ms:.3f}" for name, ms in medians.items()), "(ms, medians)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
