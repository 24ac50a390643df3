"""`offload enqueue`: put a job on a queue by name, from a shell or a script.

Arguments go through the same validation as `app.enqueue` (the job's signature and
annotations), so a typo fails here, with exit code 2, and never reaches a worker.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from offload._states import FINAL_STATES
from offload.app._offload import Offload
from offload.cli._common import Failure, UsageFailure, friendly_errors, json_option, url_option
from offload.cli._load import load_app
from offload.cli._output import LiveLine, job_dict, last_error, print_json, to_json_text
from offload.jobs._secrets import shown_record
from offload.store import verify_store
from offload.store._contract import JobRecord


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(text: str) -> Any:
    """Strict JSON: NaN and Infinity, which Python's parser accepts, are refused."""
    return json.loads(text, parse_constant=_no_constants)


def parse_arguments(args_json: str | None, pairs: tuple[str, ...]) -> dict[str, Any]:
    """Arguments by name from `--args JSON` and `key=value` words (values JSON when they parse).

    `n=5` gives 5, `flag=true` gives True, `name=ada` gives "ada", `id='"5"'` gives "5".
    """
    arguments: dict[str, Any] = {}
    if args_json is not None:
        try:
            parsed = parse_json(args_json)
        except ValueError as exc:
            raise UsageFailure(f"--args is not valid JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise UsageFailure(
                f"--args must be a JSON object of name: value, e.g. '{{\"user_id\": 42}}', "
                f"got {type(parsed).__name__}"
            )
        arguments.update(parsed)
    seen: set[str] = set()
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageFailure(f"argument {pair!r} should look like name=value, e.g. user_id=42")
        if key in seen:
            raise UsageFailure(f"argument {key!r} is given twice")
        seen.add(key)
        try:
            value: Any = parse_json(raw)
        except ValueError:
            value = raw
        arguments[key] = value
    return arguments


def wait_for(app: Offload, job_id: int, timeout: float) -> JobRecord:
    """Poll the job until it is final; a status line on stderr while a terminal watches.

    Ctrl-C stops the waiting (exit 130), not the job.
    """
    line = LiveLine(sys.stderr, every=float("inf"))
    started = time.monotonic()
    pause = 0.005
    try:
        while True:
            record = app.store.job_get(job_id)
            if record is None:
                raise Failure(f"job {job_id} disappeared while waiting (was it pruned?)")
            if record.state in FINAL_STATES:
                return record
            elapsed = time.monotonic() - started
            if elapsed >= timeout:
                raise Failure(
                    f"job {job_id} ({record.kind}) is still {record.state} after {timeout:g}s; "
                    f"it goes on: `offload jobs show {job_id}` to follow it"
                )
            if line.live:
                line.update(
                    f"waiting for job {job_id} ({record.kind}): {record.state}, "
                    f"attempt {record.attempt} of {record.max_attempts}, {elapsed:.1f}s",
                    elapsed,
                )
            time.sleep(min(pause, max(timeout - elapsed, 0.0)))
            pause = min(pause * 1.5, 0.2)
    except KeyboardInterrupt:
        line.clear()
        click.echo(f"stopped waiting; job {job_id} goes on", err=True)
        raise click.exceptions.Exit(130) from None
    finally:
        line.clear()


@click.command("enqueue")
@click.argument("app_path", metavar="APP")
@click.argument("kind")
@click.argument("pairs", nargs=-1, metavar="[NAME=VALUE]...")
@click.option(
    "--args",
    "args_json",
    metavar="JSON",
    help="Arguments as a JSON object, e.g. '{\"user_id\": 42}'.",
)
@click.option("-q", "--queue", help="Queue (default: the job type's).")
@click.option("--priority", type=int, help="Priority, -1000..1000; higher runs first.")
@click.option(
    "--delay",
    type=click.FloatRange(0),
    metavar="SECONDS",
    help="Run no sooner than this many seconds from now.",
)
@click.option("--max-attempts", type=click.IntRange(1), help="Attempts before the job is dead.")
@url_option
@json_option
@click.option(
    "--wait",
    type=click.FloatRange(0, min_open=True),
    metavar="SECONDS",
    help="Wait up to SECONDS for the job to finish and print its result.",
)
@friendly_errors
def enqueue(
    app_path: str,
    kind: str,
    pairs: tuple[str, ...],
    args_json: str | None,
    queue: str | None,
    priority: int | None,
    delay: float | None,
    max_attempts: int | None,
    url: str | None,
    as_json: bool,
    wait: float | None,
) -> None:
    """Enqueue a job of type KIND declared by APP (module:attribute, e.g. myapp:app).

    Give arguments as NAME=VALUE words (VALUE is read as JSON when it parses, else as a
    string) and/or --args with a JSON object. Prints the new job's id, or its record with
    --json. With --wait, waits for the job and prints its result; the exit code is 1 when
    the job ends dead or cancelled, or is not done in time.

    \b
      offload enqueue myapp:app send_welcome user_id=42 locale=fr
      offload enqueue myapp:app resize --args '{"image_id": 7}' --wait 30
    """
    arguments = parse_arguments(args_json, pairs)
    app = load_app(app_path, url)
    try:
        options: dict[str, Any] = {
            "queue": queue,
            "priority": priority,
            "delay": delay,
            "max_attempts": max_attempts,
        }
        call = app.call(kind, **{k: v for k, v in options.items() if v is not None})
        prepared = call.prepare_named(arguments)
        verify_store(app.config.url)  # a damaged file: one line and exit 3
        job = app.enqueue_many([prepared])[0]
        if wait is None:
            if as_json:
                print_json(job_dict(job.refresh().record))
            else:
                click.echo(job.id)
            return
        if not as_json:
            click.echo(job.id)
        record = wait_for(app, job.id, wait)
        if as_json:
            print_json(job_dict(record, readable=True))
        elif record.state == "completed":  # the producer's own: opened when encrypted
            click.echo(to_json_text(shown_record(record, readable=True).result))
        if record.state != "completed":
            reason = last_error(record) or record.state
            raise Failure(
                f"job {job.id} ({record.kind}) is {record.state} after {record.attempt} "
                f"attempt(s): {reason}"
            )
    finally:
        app.close()
