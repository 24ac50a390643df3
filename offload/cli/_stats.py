"""`offload stats`: how deep each queue is, how fast jobs finish, what fails, who works.

One snapshot, or a refreshing view with `--watch` (redrawn in place on a terminal; one JSON
document per line with `--json`, so `offload stats --watch 5 --json` feeds a log pipeline).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from offload._states import STATES
from offload.cli._common import friendly_errors, json_option, opened_app, store_options
from offload.cli._output import (
    is_tty,
    iso,
    last_error,
    print_json,
    safe_url,
    state_label,
    table,
    terminal_width,
)
from offload.cli._stats_dispatch import collect_dispatch, render_dispatch
from offload.cli._stats_runtime import collect_runtime, render_runtime
from offload.store._contract import JobFilter, Store

WORKER_SEEN_WITHIN = 60.0
_ALWAYS_SHOWN = ("available", "running", "retryable", "completed", "dead")
_NAMED_COUNTERS = ("stale_acks", "rescued", "abandoned", "shed", "refused")  # shed: issue 5
_FAILURES_SHOWN = 5


def queue_counts(store: Store) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """Jobs per queue and state, and per state over all queues."""
    queues: dict[str, dict[str, int]] = {}
    for c in store.job_counts():
        queues.setdefault(c.queue, dict.fromkeys(STATES, 0))[c.state] = c.count
    return queues, {s: sum(q[s] for q in queues.values()) for s in STATES}


def failure_rows(store: Store, shown: int) -> list[dict[str, Any]]:
    """The latest dead and retryable jobs, JSON-ready."""
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "queue": r.queue,
            "state": r.state,
            "attempt": r.attempt,
            "max_attempts": r.max_attempts,
            "error": last_error(r),
            "at": iso(r.errors[-1].get("at")) if r.errors else None,
        }
        for r in store.job_list(JobFilter(states=["dead", "retryable"], limit=shown))
    ]


def worker_rows(store: Store, now: float) -> list[dict[str, Any]]:
    """The workers seen lately, JSON-ready."""
    return [
        {
            "id": w.id,
            "host": w.host,
            "pid": w.pid,
            "queues": w.queues,
            "running": w.running,
            "started_at": iso(w.started_at),
            "seen_at": iso(w.seen_at),
            "up_seconds": round(max(now - w.started_at, 0.0), 1),
            "seen_seconds_ago": round(max(now - w.seen_at, 0.0), 1),
        }
        for w in store.worker_list(WORKER_SEEN_WITHIN)
    ]


def paused(store: Store) -> dict[str, list[str]]:
    """The paused queues and kinds."""
    pauses = store.pause_list()
    return {
        "queues": sorted(p.name for p in pauses if p.scope == "queue"),
        "kinds": sorted(p.name for p in pauses if p.scope == "kind"),
    }


def paused_lines(paused: dict[str, list[str]]) -> list[str]:
    """The line saying what is paused, for `offload stats` and `offload top` (none if nothing)."""
    if not (paused.get("queues") or paused.get("kinds")):
        return []
    names = f"queues {', '.join(paused.get('queues', ())) or '-'}; "
    names += f"kinds {', '.join(paused.get('kinds', ())) or '-'}"
    return [
        click.style("paused", fg="yellow", bold=True)
        + f": {names}  (their jobs stay queued: offload queues|kinds resume NAME)"
    ]


def collect(store: Store, url: str) -> dict[str, Any]:
    """One snapshot of the store, as plain JSON-ready data."""
    now = store.now()
    queues, totals = queue_counts(store)
    counters = dict.fromkeys(_NAMED_COUNTERS, 0)
    counters.update(store.counters())
    return {
        "url": safe_url(url),
        "engine": store.engine,
        "at": iso(now),
        "queues": queues,
        "totals": totals,
        "throughput": {
            "last_minute": store.job_finished_since(now - 60),
            "last_hour": store.job_finished_since(now - 3600),
        },
        "failures": failure_rows(store, _FAILURES_SHOWN),
        "workers": worker_rows(store, now),
        "counters": counters,
        "paused": paused(store),
        **collect_dispatch(store, now),  # SLO attainment and limit keys
        **collect_runtime(store, now),  # kinds over max_run_time, event-loop blocks
        "workflows": store.workflow_counts(),  # by state; `stuck` sagas need an operator
    }


def failures_section(failures: list[dict[str, Any]], width: int | None) -> list[str]:
    """The "Recent failures" lines of `offload stats` and `offload top`."""
    out = ["", click.style("Recent failures", bold=True)]
    if not failures:
        return [*out, "  none"]
    rows = [
        [
            f["id"],
            f["kind"],
            f["queue"],
            state_label(f["state"]),
            f"{f['attempt']}/{f['max_attempts']}",
            f["at"] or "-",
            f["error"],
        ]
        for f in failures
    ]
    header = ["ID", "KIND", "QUEUE", "STATE", "ATTEMPT", "AT", "ERROR"]
    out.append(table(header, rows, numeric=[0, 4], indent="  ", width=width))
    return out


def workflow_lines(counts: dict[str, int]) -> list[str]:
    """The "Workflows" lines: how many in each state, and a warning for stuck sagas."""
    if not counts:
        return []
    out = ["", click.style("Workflows", bold=True)]
    out.append("  " + "   ".join(f"{state} {n}" for state, n in sorted(counts.items())))
    stuck = counts.get("stuck", 0)
    if stuck:
        warning = (
            f"  {stuck} stuck saga(s): an undo job ended dead or cancelled; see "
            "`offload workflows list --state stuck`, fix the cause and retry the undo job"
        )
        out.append(click.style(warning, fg="red"))
    return out


def render(snap: dict[str, Any]) -> str:
    """A snapshot as the tables a person reads."""
    width = terminal_width()
    queues: dict[str, dict[str, int]] = snap["queues"]
    totals: dict[str, int] = snap["totals"]
    out = [click.style(f"offload stats  {snap['url']}  {snap['at']}", bold=True), ""]

    shown = [s for s in STATES if s in _ALWAYS_SHOWN or totals[s]]
    if queues:
        stopped = set((snap.get("paused") or {}).get("queues", ()))
        rows: list[list[Any]] = [
            [
                f"{name} (paused)" if name in stopped else name,
                *(counts[s] for s in shown),
                sum(counts.values()),
            ]
            for name, counts in sorted(queues.items())
        ]
        rows.append(["(all)", *(totals[s] for s in shown), sum(totals.values())])
        numeric = list(range(1, len(shown) + 2))
        out.append(table(["QUEUE", *(s.upper() for s in shown), "TOTAL"], rows, numeric=numeric))
    else:
        out.append("no jobs")
    out += paused_lines(snap.get("paused") or {})

    t = snap["throughput"]
    out += ["", click.style("Finished", bold=True)]
    out.append(
        table(
            ["", "COMPLETED", "DEAD", "RETRYABLE"],
            [
                [name, t[key]["completed"], t[key]["dead"], t[key]["retryable"]]
                for name, key in (("last minute", "last_minute"), ("last hour", "last_hour"))
            ],
            numeric=[1, 2, 3],
            indent="  ",
        )
    )

    out += failures_section(snap["failures"], width)

    workers = snap["workers"]
    out += ["", click.style(f"Workers alive ({len(workers)})", bold=True)]
    if workers:
        out.append(
            table(
                ["ID", "HOST", "PID", "QUEUES", "RUNNING", "STARTED", "SEEN"],
                [
                    [
                        w["id"],
                        w["host"],
                        w["pid"],
                        ",".join(w["queues"]),
                        w["running"],
                        w["started_at"],
                        f"{w['seen_seconds_ago']:g}s ago",
                    ]
                    for w in workers
                ],
                numeric=[2, 4],
                indent="  ",
            )
        )
    else:
        out.append(f"  none seen in the last {WORKER_SEEN_WITHIN:g}s")

    out += render_dispatch(snap)
    out += render_runtime(snap)
    out += workflow_lines(snap.get("workflows") or {})

    counters: dict[str, int] = snap["counters"]
    out += ["", click.style("Counters", bold=True)]
    out.append("  " + "   ".join(f"{name} {value}" for name, value in sorted(counters.items())))
    return "\n".join(out)


@click.command("stats")
@store_options
@json_option
@click.option(
    "--watch",
    type=click.FloatRange(0.1),
    metavar="SECONDS",
    help="Refresh every SECONDS until Ctrl-C.",
)
@friendly_errors
def stats(app_path: str | None, url: str | None, as_json: bool, watch: float | None) -> None:
    """Queue depth per state, throughput, recent failures, live workers, counters, and job
    types over their max run time.

    \b
      offload stats
      offload stats --watch 2
      offload stats --json | jq .totals
    """
    with opened_app(app_path, url) as app:
        store = app.store
        where = app.config.url
        if watch is None:
            snap = collect(store, where)
            if as_json:
                print_json(snap)
            else:
                click.echo(render(snap))
            return
        live = is_tty(sys.stdout) and not as_json
        try:
            while True:
                snap = collect(store, where)
                if as_json:
                    print_json(snap, compact=True)
                elif live:
                    click.echo("\x1b[H\x1b[2J" + render(snap), nl=False)
                    click.echo(f"\n\nrefreshing every {watch:g}s; Ctrl-C to stop")
                else:
                    click.echo(render(snap) + "\n")
                sys.stdout.flush()
                time.sleep(watch)
        except KeyboardInterrupt:
            if live:
                click.echo("")
