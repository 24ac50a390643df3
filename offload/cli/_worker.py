"""`offload worker`: run jobs, in this process or under a supervisor of N processes.

`--burst` drains what is queued and exits; `--reload` restarts the worker when a `.py` file
changes (cli/_reload.py).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
from collections.abc import Callable

import click

from offload._redact import mask_logging, mask_url
from offload.cli._common import configure_logging, friendly_errors, url_option
from offload.cli._load import load_app
from offload.cli._output import safe_url

# The `--url` of a supervisor, handed to its worker processes by environment: a command line is
# readable by every local user (`ps`, /proc/<pid>/cmdline), an environment only by its owner.
SUPERVISED_URL = "OFFLOAD_SUPERVISED_URL"


@click.command("worker")
@click.argument("app_path", metavar="APP")
@url_option
@click.option(
    "-q",
    "--queues",
    default="default",
    show_default=True,
    help="Comma-separated queues to take jobs from.",
)
@click.option(
    "-c",
    "--concurrency",
    default=10,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Jobs run at once per process.",
)
@click.option(
    "-p",
    "--processes",
    default=1,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Worker processes; more than 1 runs a supervisor that restarts them.",
)
@click.option(
    "--prefetch",
    default=None,
    type=click.IntRange(0, 100_000),
    help="Jobs claimed ahead of free slots per process while jobs are short (default: four "
    "times the concurrency; none while a queue holds an at-most-once job type). A crash of the "
    "process is charged only to the jobs that had started (docs/crashes.md).",
)
@click.option(
    "--grace",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds running jobs get to finish after SIGTERM/SIGINT.",
)
@click.option(
    "--poll-interval",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0.001),
    help="Fallback poll when no wake-up arrives, in seconds.",
)
@click.option(
    "--no-maintenance", is_flag=True, help="Do not take part in electing the maintenance leader."
)
@click.option(
    "--burst",
    is_flag=True,
    help="Run what the queues hold now, and what comes due or is enqueued while they drain, "
    "then exit 0 (jobs due later are left). A store that cannot be reached fails at once.",
)
@click.option(
    "--reload",
    is_flag=True,
    help="For development: restart the worker when a .py file under the current folder (or "
    "the app's package) changes. Needs the reload extra (pip install 'offload[reload]').",
)
@click.option(
    "-v", "--verbose", count=True, help="More logging: -v for debug (the default is info)."
)
@friendly_errors
def worker(
    app_path: str,
    url: str | None,
    queues: str,
    concurrency: int,
    processes: int,
    prefetch: int | None,
    grace: float,
    poll_interval: float,
    no_maintenance: bool,
    burst: bool,
    reload: bool,
    verbose: int,
) -> None:
    """Run a worker for APP (module:attribute, e.g. myapp:app)."""
    level = logging.DEBUG if verbose else logging.INFO
    configure_logging(level)  # text, or JSON with --log-format json
    mask_logging()  # a URL in any log line shows without its password
    supervised_url = os.environ.pop(SUPERVISED_URL, None)  # not for the jobs' own processes
    # A forked child keeps this process's command line: one whose `--url` holds a password
    # starts fresh interpreters instead, so that only the command the user typed shows it.
    may_fork = url is None or mask_url(url) == url
    if url is None:  # a child of a supervisor or of the reloader
        url = supervised_url
    names = [q.strip() for q in queues.split(",") if q.strip()]
    if not names:
        raise click.BadParameter("name at least one queue", param_hint="--queues")
    if burst and reload:
        raise click.UsageError("--burst and --reload do not go together: pick one")

    def child_argv(children: int) -> list[str]:
        argv = [
            "worker",
            app_path,
            "--queues",
            ",".join(names),
            "--concurrency",
            str(concurrency),
            "--processes",
            str(children),
            "--grace",
            str(grace),
            *([] if prefetch is None else ["--prefetch", str(prefetch)]),
            "--poll-interval",
            str(poll_interval),
        ] + ["-v"] * verbose
        if no_maintenance:
            argv.append("--no-maintenance")
        if burst:
            argv.append("--burst")
        return argv

    if reload:
        from pathlib import Path

        from offload.cli._reload import Reloader, require_watchfiles, watched_folders

        require_watchfiles()
        folders = watched_folders(app_path, Path.cwd())
        sys.exit(Reloader(child_argv(processes), folders, grace, env=supervised(url)).run())

    def serve() -> None:
        _serve(
            app_path, url, names, concurrency, prefetch, grace, poll_interval, no_maintenance, burst
        )

    if processes > 1:
        child_main = functools.partial(_serve_forked, serve)
        fork = child_main if may_fork else None
        sys.exit(_supervise(app_path, url, processes, child_argv(1), burst, fork))
    serve()


@friendly_errors
def _serve(
    app_path: str,
    url: str | None,
    names: list[str],
    concurrency: int,
    prefetch: int | None,
    grace: float,
    poll_interval: float,
    no_maintenance: bool,
    burst: bool,
) -> None:
    """One worker process, in this process: `offload worker` without `--processes N`, and
    each process of a supervisor's."""
    from offload.worker import Worker, watch_supervisor

    app = load_app(app_path, url)
    unknown_queues = [q for q in names if q not in {j.options_.queue for j in app.jobs.values()}]
    if unknown_queues and app.jobs:
        click.echo(
            f"note: no job type of this app uses queue(s) {', '.join(unknown_queues)}", err=True
        )
    click.echo(
        f"offload worker: {safe_url(app.config.url)} queues={','.join(names)} "
        f"concurrency={concurrency}{' burst' if burst else ''}",
        err=True,
    )
    process = Worker(
        app,
        names,
        concurrency,
        prefetch=prefetch,
        grace=grace,
        poll_interval=poll_interval,
        maintenance=not no_maintenance,
        burst=burst,
    )
    watch_supervisor(process.stop)  # a child of `--processes N`: stop when the supervisor dies
    process.run()
    if burst:
        click.echo(
            f"offload worker: drained: {process.completed} completed, {process.failed} failed",
            err=True,
        )


def _supervise(
    app_path: str,
    url: str | None,
    processes: int,
    argv: list[str],
    burst: bool,
    child_main: Callable[[], int] | None,
) -> int:
    """Run `processes` workers under a supervisor; its exit code.

    With `child_main`, the children are forked first where that is safe (worker/_forked.py),
    so they start with offload imported while the supervisor checks the app and the store, and
    run `child_main` once the check has passed. Otherwise each child is a fresh interpreter
    started after the check.
    """
    from offload._errors import StoreFullError
    from offload.store import verify_store
    from offload.worker import Supervisor

    supervisor = Supervisor(processes, argv, burst=burst, env=supervised(url))
    try:
        if child_main is not None:
            _load_engine(url)
            supervisor.fork(child_main)
        # Fail here, once, if the app cannot be imported or the store is damaged; a store
        # that refuses writes is waited for by each worker process.
        checked = load_app(app_path, url)
        with contextlib.suppress(StoreFullError):
            verify_store(checked.config.url)
            if burst:  # a drain does not wait for a store that cannot be reached
                checked.store.now()
        checked.close()
    except BaseException:
        supervisor.abandon()  # forked children end without running anything
        raise
    supervisor.release()
    return supervisor.run()


def _load_engine(url: str | None) -> None:
    """Import the PostgreSQL engine before the fork when `url` (or `$OFFLOAD_URL`) names one,
    so that each forked child need not import it: its driver, psycopg, takes about as long to
    import as all of offload. Its store connects to nothing until it is used; a problem with
    the URL is left for the check that follows to report. SQLite's engine is quick to import
    (and opening it would touch the file); without a URL the app, not imported yet, names the
    store."""
    from offload.store import open_store

    url = url or os.environ.get("OFFLOAD_URL")
    if not url or url.split(":", 1)[0].lower() not in ("postgresql", "postgres"):
        return
    with contextlib.suppress(Exception):
        open_store(url).close()


def _serve_forked(serve: Callable[[], None]) -> int:
    """A forked child's run of one worker process: its exit code, with the errors that
    `offload worker` turns into messages printed as the command prints them."""
    try:
        serve()
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        click.echo("Aborted!", err=True)
        return 1
    return 0


def supervised(url: str | None) -> dict[str, str]:
    """The environment that hands `--url` to a supervisor's child (`SUPERVISED_URL`)."""
    return {SUPERVISED_URL: url} if url else {}
