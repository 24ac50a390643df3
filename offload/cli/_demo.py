"""`offload demo`: see offload work, with nothing to set up.

It declares a small application (offload/cli/_demo_app.py), starts worker processes with
`offload worker` on a fresh SQLite file, enqueues jobs in a few waves, shows their states live,
stops the workers with SIGTERM once everything but the cron job has finished, and sums up what
happened: completions, retries, the job that ends dead and why, cron firings and throughput.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import IO, Any

import click

from offload._states import FINAL_STATES
from offload.app._offload import Offload
from offload.cli._common import Failure, friendly_errors, json_option
from offload.cli._demo_app import CRON_KIND, CRON_QUEUE, QUEUES, STATE_ENV
from offload.cli._load import load_app
from offload.cli._output import LiveLine, last_error, print_json, safe_url
from offload.jobs._type import PreparedJob
from offload.store._contract import JobFilter, JobRecord

DEMO_APP = "offload.cli._demo_app:app"
DEFAULT_FILE = "offload-demo.db"
WAVES = 4
WAVE_EVERY = 0.3
STOP_GRACE = 5.0
_LIVE_STATES = ("available", "running", "retryable", "completed", "dead")
_PENDING = ("scheduled", "available", "running", "retryable")


@dataclass
class _WorkerProcess:
    """One `offload worker` child and the file its log goes to."""

    process: subprocess.Popen[bytes]
    log: IO[bytes]

    def log_tail(self, lines: int = 15) -> str:
        self.log.flush()
        self.log.seek(0)
        text = self.log.read().decode("utf-8", "replace")
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class _Run:
    """What the demo enqueued and saw, for the live line and the summary."""

    app: Offload
    url: str
    state_dir: str
    workers: list[_WorkerProcess] = field(default_factory=list)
    enqueued: dict[str, list[int]] = field(default_factory=dict)
    started: float = 0.0
    store_started: float = 0.0
    waves_done: int = 0


def _fresh_default_file() -> str:
    """`./offload-demo.db`, emptied: the file and its WAL side files are removed."""
    path = os.path.abspath(DEFAULT_FILE)
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            os.remove(path + suffix)
        except FileNotFoundError:
            pass
    return path


def _waves(app: Offload, count: int) -> list[list[PreparedJob]]:
    """The demo's jobs, split into waves: half emails, 30% thumbnails, the rest webhooks,
    and one invoice import that always fails (in the first wave, so its retries overlap)."""
    emails = max(count * 5 // 10, 1)
    thumbs = max(count * 3 // 10, 1)
    hooks = max(count - emails - thumbs, 1)
    email, thumb, hook = (
        app.job_type(n) for n in ("send_signup_email", "make_thumbnail", "deliver_webhook")
    )
    jobs: list[PreparedJob] = []
    for i in range(max(emails, thumbs, hooks)):
        if i < emails:
            jobs.append(email.prepare(1000 + i, f"user{1000 + i}@example.com"))
        if i < thumbs:
            jobs.append(thumb.prepare(5000 + i, width=320 if i % 2 else 640))
        if i < hooks:
            jobs.append(hook.prepare(i, "https://partner.example/hooks", "order.paid"))
    waves = [jobs[w::WAVES] for w in range(WAVES)]
    waves[0].insert(0, app.job_type("import_invoice").prepare(4711))
    return [w for w in waves if w]


def _start_workers(run: _Run, processes: int) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OFFLOAD_URL"}
    env["PYTHONUNBUFFERED"] = "1"
    env[STATE_ENV] = run.state_dir
    cmd = [
        sys.executable,
        "-m",
        "offload",
        "worker",
        DEMO_APP,
        "--url",
        run.url,
        "--queues",
        ",".join(QUEUES),
        "--concurrency",
        "4",
        "--grace",
        str(STOP_GRACE),
        "--poll-interval",
        "0.5",
    ]
    for _ in range(processes):
        log = tempfile.TemporaryFile(prefix="offload-demo-worker-")
        child = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # Ctrl-C reaches the demo only; it stops them in order
        )
        run.workers.append(_WorkerProcess(child, log))


def _check_workers(run: _Run) -> None:
    for n, w in enumerate(run.workers):
        code = w.process.poll()
        if code is not None:
            raise Failure(
                f"worker process {n + 1} exited with code {code}; its last log lines:\n"
                f"{w.log_tail()}"
            )


def _wait_ready(run: _Run, timeout: float) -> None:
    """Until every child has registered itself in the store (it is then claiming jobs)."""
    pids = {w.process.pid for w in run.workers}
    deadline = time.monotonic() + timeout
    while True:
        _check_workers(run)
        seen = {w.pid for w in run.app.store.worker_list(60.0)}
        if pids <= seen:
            return
        if time.monotonic() > deadline:
            raise Failure(f"the worker processes did not start within {timeout:g}s")
        time.sleep(0.05)


def _stop_workers(run: _Run) -> None:
    """SIGTERM (graceful: running jobs finish), then a kill for any that will not stop."""
    for w in run.workers:
        if w.process.poll() is None:
            w.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE + 10.0
    for w in run.workers:
        try:
            w.process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            w.process.kill()
            w.process.wait()


def _cleanup(run: _Run) -> None:
    for w in run.workers:
        if w.process.poll() is None:
            w.process.kill()
            w.process.wait()
        w.log.close()
    shutil.rmtree(run.state_dir, ignore_errors=True)


def _counts(run: _Run) -> tuple[dict[str, int], int, int, int]:
    """Jobs per state (cron excluded), pending non-cron jobs, cron jobs, cron completed."""
    by_state = dict.fromkeys(("scheduled", *_LIVE_STATES, "cancelled", "shed"), 0)
    pending = cron = cron_done = 0
    for c in run.app.store.job_counts():
        if c.queue == CRON_QUEUE:
            cron += c.count
            cron_done += c.count if c.state == "completed" else 0
            continue
        by_state[c.state] = by_state.get(c.state, 0) + c.count
        if c.state in _PENDING:
            pending += c.count
    return by_state, pending, cron, cron_done


def _monitor(run: _Run, waves: list[list[PreparedJob]], seconds: float, line: LiveLine) -> bool:
    """Enqueue the waves and draw the live line until done; False when time ran out."""
    deadline = run.started + seconds
    while True:
        now = time.monotonic()
        due = min(int((now - run.started) / WAVE_EVERY) + 1, len(waves))
        while run.waves_done < due:
            wave = waves[run.waves_done]
            for prepared, job in zip(wave, run.app.enqueue_many(wave), strict=True):
                run.enqueued.setdefault(prepared.job_type.name, []).append(job.id)
            run.waves_done += 1
        _check_workers(run)
        by_state, pending, cron, cron_done = _counts(run)
        shown = list(_LIVE_STATES) + (["scheduled"] if by_state["scheduled"] else [])
        counts = " · ".join(f"{s} {by_state[s]}" for s in shown)
        status = f"{now - run.started:5.1f}s  {counts} · cron fired {cron}"
        done = run.waves_done == len(waves) and pending == 0 and cron_done >= 1
        line.update(status, now, force=done or now >= deadline)  # the last state is shown
        if done:
            return True
        if now >= deadline:
            return False
        time.sleep(0.1)


def _records(run: _Run) -> list[JobRecord]:
    """The jobs this run enqueued, and the cron jobs fired since it started."""
    store = run.app.store
    out: list[JobRecord] = []
    for kind, ids in run.enqueued.items():
        wanted = set(ids)
        listed = store.job_list(JobFilter(kind=kind, limit=len(ids) + 100))
        out += [r for r in listed if r.id in wanted]
    cron = store.job_list(JobFilter(kind=CRON_KIND, limit=10_000))
    out += [r for r in cron if r.inserted_at >= run.store_started - 5.0]
    return out


def summarize(run: _Run, finished: bool, interrupted: bool) -> dict[str, Any]:
    """What happened, as JSON-ready data."""
    records = _records(run)
    mine = [r for r in records if r.kind != CRON_KIND]
    cron = [r for r in records if r.kind == CRON_KIND]
    completed = [r for r in records if r.state == "completed"]
    recovered = [r for r in mine if r.state == "completed" and r.errors]
    dead = [r for r in mine if r.state == "dead"]
    final = [r for r in mine if r.state in FINAL_STATES and r.finished_at is not None]
    span = 0.0
    if final:
        span = max(r.finished_at or 0.0 for r in final) - min(r.inserted_at for r in mine)
    return {
        "url": safe_url(run.url),
        "workers": len(run.workers),
        "finished": finished,
        "interrupted": interrupted,
        "elapsed_seconds": round(time.monotonic() - run.started, 2),
        "enqueued": {kind: len(ids) for kind, ids in run.enqueued.items()},
        "completed": len(completed),
        "retried": len(recovered),
        "failed_attempts": sum(len(r.errors) for r in mine),
        "dead": len(dead),
        "dead_jobs": [
            {"id": r.id, "kind": r.kind, "attempts": r.attempt, "error": last_error(r)}
            for r in dead
        ],
        "cron_firings": len(cron),
        "cron_completed": sum(1 for r in cron if r.state == "completed"),
        "unfinished": sum(1 for r in mine if r.state not in FINAL_STATES),
        "jobs_per_second": round(len(final) / span, 1) if span > 0 else None,
        "throughput_jobs": len(final),
        "throughput_seconds": round(span, 3),
    }


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def render_summary(s: dict[str, Any]) -> str:
    """The summary a person reads at the end of the demo."""
    enqueued = s["enqueued"]
    parts = ", ".join(f"{n} {kind}" for kind, n in sorted(enqueued.items(), key=lambda i: -i[1]))
    lines = [
        "",
        click.style(
            f"Summary ({s['elapsed_seconds']:.1f}s, {s['workers']} worker processes, {s['url']}"
            f"{', interrupted' if s['interrupted'] else ''})",
            bold=True,
        ),
        f"  enqueued      {sum(enqueued.values()):<5} {parts}",
        f"  completed     {s['completed']:<5} including {_plural(s['cron_completed'], 'cron run')}",
        f"  retried       {s['retried']:<5} jobs failed at first, then succeeded "
        f"({s['failed_attempts']} failed attempts in all)",
    ]
    dead = s["dead_jobs"]
    first = "none"
    if dead:
        d = dead[0]
        first = f"{d['kind']} #{d['id']} after {d['attempts']} attempts: {d['error']}"
    lines.append(f"  dead          {s['dead']:<5} {first}")
    for d in dead[1:]:
        lines.append(f"                      {d['kind']} #{d['id']}: {d['error']}")
    lines.append(f"  cron firings  {s['cron_firings']:<5} {CRON_KIND}, every 2 seconds")
    if s["jobs_per_second"] is not None:
        lines.append(
            f"  throughput    {s['jobs_per_second']:<5} jobs/s ({s['throughput_jobs']} jobs "
            f"finished in {s['throughput_seconds']:.2f}s)"
        )
    if s["unfinished"]:
        lines.append(f"  unfinished    {s['unfinished']:<5} still pending when the demo stopped")
    where = shlex.quote(s["url"])
    lines += [
        "",
        "Look around:",
        f"  offload stats --url {where}",
        f"  offload jobs list --url {where} --state dead",
    ]
    if dead:
        lines.append(f"  offload jobs show {dead[0]['id']} --url {where}")
    return "\n".join(lines)


@click.command("demo")
@click.option(
    "--url",
    metavar="URL",
    help=f"Store to run the demo on [default: a fresh ./{DEFAULT_FILE}, overwritten]. "
    "$OFFLOAD_URL is ignored, so the demo never touches your real store by accident.",
)
@click.option(
    "--jobs",
    "job_count",
    default=100,
    show_default=True,
    type=click.IntRange(3, 100_000),
    help="Jobs to enqueue (plus one that fails for good, plus the cron job's).",
)
@click.option(
    "--seconds",
    default=30.0,
    show_default=True,
    type=click.FloatRange(1),
    help="Stop the workers after this long even if jobs are left.",
)
@click.option(
    "--workers",
    "processes",
    default=2,
    show_default=True,
    type=click.IntRange(1, 16),
    help="Worker processes to start.",
)
@json_option
@friendly_errors
def demo(url: str | None, job_count: int, seconds: float, processes: int, as_json: bool) -> None:
    """Run a demo: a small app, real worker processes, jobs flowing live, and a summary.

    Exit code 0 when every job finished, 1 when some were left when --seconds ran out or a
    worker failed, 130 when interrupted with Ctrl-C. With --json the summary goes to stdout as
    JSON and the live view to stderr.
    """
    stream = sys.stderr if as_json else sys.stdout
    os.environ.pop("OFFLOAD_URL", None)  # ignored, as --help says: no warning about it either
    url = url or _fresh_default_file()
    app = load_app(DEMO_APP, url)
    run = _Run(app, url, tempfile.mkdtemp(prefix="offload-demo-"))
    finished = interrupted = False
    line = LiveLine(stream, every=1.0)
    try:
        store = app.store  # creates the schema
        waves = _waves(app, job_count)
        click.echo(
            f"offload demo: {sum(len(w) for w in waves)} jobs, {processes} worker processes, "
            f"{safe_url(url)}",
            file=stream,
        )
        _start_workers(run, processes)
        _wait_ready(run, timeout=30.0)
        run.started = time.monotonic()
        run.store_started = store.now()
        try:
            finished = _monitor(run, waves, seconds, line)
        except KeyboardInterrupt:
            interrupted = True
        line.finish()
        click.echo("stopping workers (SIGTERM: running jobs finish first)…", file=stream)
        _stop_workers(run)
        summary = summarize(run, finished, interrupted)
    finally:
        line.finish()
        _cleanup(run)
        app.close()
    if as_json:
        print_json(summary)
    else:
        click.echo(render_summary(summary))
    if interrupted:
        raise click.exceptions.Exit(130)
    if not finished:
        what = (
            f"{summary['unfinished']} jobs were still pending"
            if summary["unfinished"]
            else "the cron job had not run yet"
        )
        raise Failure(f"{what} after {seconds:g}s (a slow machine? try --seconds 60)")
