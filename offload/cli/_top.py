"""`offload top`: a live view of the queues, the rates, the workers and recent failures.

On a terminal it takes the whole screen and redraws every second until `q` or Ctrl-C, as
`top` does; elsewhere (a pipe, a log) it prints one frame per refresh. `--once` prints one
frame and exits; `--json` prints the same data as JSON (one document per line when it
refreshes, as `offload stats --watch --json` does). Rates are jobs finished per second over
the last `RATE_WINDOW` seconds, so the first frame has them too.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import sys
import time
from collections.abc import Iterator
from typing import Any

import click

from offload.cli._common import friendly_errors, json_option, opened_app, store_options
from offload.cli._output import (
    is_tty,
    iso,
    print_json,
    safe_url,
    table,
    terminal_width,
)
from offload.cli._stats import (
    age_label,
    failure_rows,
    failures_section,
    oldest_ages,
    paused,
    paused_lines,
    queue_counts,
    worker_rows,
)
from offload.store._contract import Store

RATE_WINDOW = 10.0  # seconds the rates are averaged over
WORKER_SEEN_WITHIN = 60.0  # a worker is alive when it reported within this
QUEUE_STATES = ("available", "running", "scheduled", "retryable", "dead")
ENTER_SCREEN = "\x1b[?1049h\x1b[?25l"  # the alternate screen, cursor hidden
LEAVE_SCREEN = "\x1b[?25h\x1b[?1049l"
HOME_AND_CLEAR = "\x1b[H\x1b[2J"


def collect(store: Store, url: str, failures: int = 5) -> dict[str, Any]:
    """One frame's data, JSON-ready: counts per queue and state, rates, workers, failures and
    what is paused (the same keys as `offload stats --json`, plus `rates`)."""
    now = store.now()
    queues, totals = queue_counts(store)
    finished = store.job_finished_since(now - RATE_WINDOW)
    failed = finished.get("dead", 0) + finished.get("retryable", 0)
    return {
        "url": safe_url(url),
        "engine": store.engine,
        "at": iso(now),
        "rates": {
            "window_seconds": RATE_WINDOW,
            "completed_per_second": round(finished.get("completed", 0) / RATE_WINDOW, 2),
            "failed_per_second": round(failed / RATE_WINDOW, 2),
        },
        "queues": queues,
        "totals": totals,
        "oldest_age_seconds": oldest_ages(store, queues, now),
        "workers": worker_rows(store, now),
        "failures": failure_rows(store, failures),
        "paused": paused(store),
    }


def _span(seconds: float) -> str:
    """A duration as a person reads it in a narrow column: 42s, 7m, 3h, 2d."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def render(frame: dict[str, Any], width: int, live: bool = False) -> str:
    """A frame as a screen of text, `width` columns wide."""
    rates, totals = frame["rates"], frame["totals"]
    title = f"offload top  {frame['url']}  {frame['at']}"
    if live:
        title += "   q: quit"
    running = sum(w["running"] for w in frame["workers"])
    summary = (
        f"completed {rates['completed_per_second']:g}/s   "
        f"failed {rates['failed_per_second']:g}/s   "
        f"(last {rates['window_seconds']:g}s)   "
        f"workers {len(frame['workers'])}   running {running}   "
        f"ready {totals['available']}   dead {totals['dead']}"
    )
    out = [click.style(title, bold=True), summary, ""]

    queues: dict[str, dict[str, int]] = frame["queues"]
    if queues:
        ages: dict[str, float] = frame.get("oldest_age_seconds") or {}
        rows: list[list[Any]] = [
            [name, *(counts[s] for s in QUEUE_STATES), age_label(ages.get(name))]
            for name, counts in sorted(queues.items())
        ]
        if len(queues) > 1:
            oldest = max(ages.values(), default=None)
            rows.append(["(all)", *(totals[s] for s in QUEUE_STATES), age_label(oldest)])
        numeric = list(range(1, len(QUEUE_STATES) + 2))
        headers = ["QUEUE", *(s.upper() for s in QUEUE_STATES), "OLDEST"]
        out.append(table(headers, rows, numeric=numeric))
    else:
        out.append("no jobs yet")
    out += paused_lines(frame.get("paused") or {})

    workers = frame["workers"]
    out += ["", click.style(f"Workers ({len(workers)})", bold=True)]
    if workers:
        out.append(
            table(
                ["ID", "HOST", "PID", "RUNNING", "UP", "SEEN", "QUEUES"],
                [
                    [
                        w["id"],
                        w["host"],
                        w["pid"],
                        w["running"],
                        _span(w["up_seconds"]),
                        f"{w['seen_seconds_ago']:.0f}s ago",
                        ",".join(w["queues"]),
                    ]
                    for w in workers
                ],
                numeric=[2, 3],
                indent="  ",
                width=width,
            )
        )
    else:
        out.append(f"  none seen in the last {WORKER_SEEN_WITHIN:g}s")

    out += failures_section(frame["failures"], width)
    return "\n".join(out)


@contextlib.contextmanager
def _keys() -> Iterator[bool]:
    """Single key presses from the terminal (cbreak mode, restored afterwards); yields
    whether keys can be read at all (not when stdin is not a terminal)."""
    if not is_tty(sys.stdin):
        yield False
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    try:
        yield True
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _wait_for_quit(seconds: float, keys: bool) -> bool:
    """Wait up to `seconds`; True when `q` was pressed meanwhile."""
    if not keys:
        time.sleep(seconds)
        return False
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([sys.stdin], [], [], left)
        if ready and os.read(sys.stdin.fileno(), 32).lower().startswith(b"q"):
            return True
    return False


@click.command("top")
@store_options
@json_option
@click.option("--once", is_flag=True, help="Print one frame and exit.")
@click.option(
    "--interval",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0.1),
    metavar="SECONDS",
    help="Seconds between refreshes.",
)
@click.option(
    "--failures",
    default=5,
    show_default=True,
    type=click.IntRange(0, 100),
    help="Recent failures shown.",
)
@friendly_errors
def top(
    app_path: str | None,
    url: str | None,
    as_json: bool,
    once: bool,
    interval: float,
    failures: int,
) -> None:
    """A live view of queues, rates, workers and recent failures, until q or Ctrl-C.

    \b
      offload top
      offload top --once
      offload top --json --once | jq .rates
    """
    with opened_app(app_path, url) as app:
        store, where = app.store, app.config.url
        if once:
            frame = collect(store, where, failures)
            if as_json:
                print_json(frame)
            else:
                click.echo(render(frame, terminal_width()))
            return
        live = is_tty(sys.stdout) and not as_json
        try:
            with _keys() as keys:
                if live:
                    click.echo(ENTER_SCREEN, nl=False)
                try:
                    while True:
                        frame = collect(store, where, failures)
                        if as_json:
                            print_json(frame, compact=True)
                        elif live:
                            size = shutil.get_terminal_size()
                            lines = render(frame, size.columns, live=True).splitlines()
                            click.echo(HOME_AND_CLEAR + "\n".join(lines[: size.lines]), nl=False)
                        else:
                            click.echo(render(frame, terminal_width()) + "\n")
                        sys.stdout.flush()
                        if _wait_for_quit(interval, keys and live):
                            return
                finally:
                    if live:
                        click.echo(LEAVE_SCREEN, nl=False)
        except KeyboardInterrupt:
            return
