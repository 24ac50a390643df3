"""`offload jobs …`: list, show, retry, cancel and discard jobs, straight from the store.

No job code is needed: the store holds everything these commands read. `--app` only lends its
store URL and settings. Retry, cancel and discard take job ids, or a filter that names many
jobs at once (`_bulk.py`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from offload._states import STATES
from offload.app._handle import progress_of
from offload.cli._bulk import (
    build_match,
    bulk_options,
    filter_options,
    has_search,
    run_bulk,
)
from offload.cli._common import (
    Failure,
    UsageFailure,
    friendly_errors,
    json_option,
    opened_app,
    store_options,
)
from offload.cli._output import (
    iso,
    job_dict,
    last_error,
    print_json,
    state_label,
    table,
    terminal_width,
    to_json_text,
)
from offload.jobs._secrets import shown_record
from offload.store._bulk import CANCELLABLE_FROM, DISCARDABLE_FROM, RETRYABLE_FROM
from offload.store._contract import JobFilter, JobRecord, Store
from offload.store._versions import PENDING_STATES

_TRACEBACK_LINES = 12


@click.group("jobs")
def jobs() -> None:
    """Inspect jobs and act on them: list, show, retry, cancel, discard; count versions."""


@jobs.command("list")
@click.option(
    "-s",
    "--state",
    "states",
    multiple=True,
    type=click.Choice(STATES, case_sensitive=False),
    help="Only jobs in this state (repeat for several).",
)
@click.option("-q", "--queue", help="Only jobs of this queue.")
@click.option("-k", "--kind", help="Only jobs of this job type.")
@click.option(
    "-n",
    "--limit",
    default=50,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Show at most this many jobs.",
)
@click.option(
    "--before",
    "before_id",
    type=click.IntRange(1),
    metavar="ID",
    help="Only jobs older than this id (to page through long lists).",
)
@filter_options
@store_options
@json_option
@friendly_errors
def list_jobs(
    states: tuple[str, ...],
    queue: str | None,
    kind: str | None,
    limit: int,
    before_id: int | None,
    app_path: str | None,
    url: str | None,
    as_json: bool,
    **search: Any,
) -> None:
    """List jobs, newest first.

    \b
      offload jobs list --state dead --state retryable
      offload jobs list --queue emails --limit 10 --json
      offload jobs list --state dead --since 1h --error-contain timeout
    """
    with opened_app(app_path, url) as app:
        if has_search(search):
            match = build_match(app.store, states, {"queue": queue, "kind": kind, **search})
            records = app.store.job_search(match, limit, before_id)
        else:
            flt = JobFilter(
                states=[s.lower() for s in states] or None,
                queue=queue,
                kind=kind,
                limit=limit,
                before_id=before_id,
            )
            records = app.store.job_list(flt)
    if as_json:
        print_json([job_dict(r, listed=True) for r in records])
        return
    if not records:
        click.echo("no jobs match", err=True)
        return
    rows = [
        [
            r.id,
            r.kind,
            r.queue,
            state_label(r.state),
            f"{r.attempt}/{r.max_attempts}",
            iso(r.inserted_at, "seconds"),
            iso(r.finished_at, "seconds") or "-",
            last_error(r),
        ]
        for r in map(shown_record, records)
    ]
    headers = ["ID", "KIND", "QUEUE", "STATE", "ATTEMPT", "INSERTED", "FINISHED", "LAST ERROR"]
    click.echo(table(headers, rows, numeric=[0, 4], width=terminal_width()))
    if len(records) == limit:
        click.echo(
            f"(first {limit} shown; more with --limit or --before {records[-1].id})", err=True
        )


@jobs.command("versions")
@click.option("-k", "--kind", help="Only jobs of this job type.")
@store_options
@json_option
@friendly_errors
def job_versions(kind: str | None, app_path: str | None, url: str | None, as_json: bool) -> None:
    """Count the jobs still to run (available, scheduled, retryable, running) per job type
    and argument version, to see when the last job of an old version is gone.

    \b
      offload jobs versions
      offload jobs versions --kind send_invoice --json

    With --app, CODE is the version the app declares for each job type.
    """
    with opened_app(app_path, url) as app:
        rows = app.job_versions(kind)
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("no jobs to run" + (f" of kind {kind!r}" if kind else ""), err=True)
        return
    states = list(PENDING_STATES)
    table_rows = [
        [
            r["kind"],
            r["version"],
            *(r[s] for s in states),
            r["total"],
            "-" if r["declared"] is None else r["declared"],
        ]
        for r in rows
    ]
    headers = ["KIND", "VERSION", *(s.upper() for s in states), "TOTAL", "CODE"]
    numeric = list(range(1, len(headers)))
    click.echo(table(headers, table_rows, numeric=numeric, width=terminal_width()))


@jobs.command("show")
@click.argument("job_id", metavar="ID", type=int)
@click.option(
    "--decrypt",
    is_flag=True,
    help="Show encrypted arguments and result opened with this process's keys "
    "($OFFLOAD_KEYS or $OFFLOAD_KEYS_FILE) instead of <encrypted>.",
)
@store_options
@json_option
@friendly_errors
def show_job(
    job_id: int, decrypt: bool, app_path: str | None, url: str | None, as_json: bool
) -> None:
    """Show every field of one job, its errors with their tracebacks, and its result."""
    with opened_app(app_path, url) as app:
        record = app.store.job_get(job_id)
    if record is None:
        raise Failure(f"job {job_id} does not exist (it may have been pruned)")
    if as_json:
        print_json(job_dict(record, readable=decrypt))
        return
    click.echo(_describe(shown_record(record, decrypt)))


def _describe(r: JobRecord) -> str:
    """A job as a block of `field  value` lines, then its errors."""
    lease = "-"
    if r.lease_owner:
        lease = f"{r.lease_owner} until {iso(r.lease_expires_at)}"
    fields: list[tuple[str, Any]] = [
        ("kind", r.kind),
        ("state", state_label(r.state)),
        ("queue", r.queue),
        ("priority", r.priority),
        ("attempts", f"{r.attempt} of {r.max_attempts} (worker crashes: {r.crashes})"),
        ("delivery", r.delivery),
        ("timeout", "-" if r.timeout is None else f"{r.timeout:g}s"),
        ("tenant", r.tenant or "-"),
        ("unique key", r.unique_key or "-"),
        ("args", _field(r, "args")),
        ("version", r.version),  # of the arguments (docs/versions.md)
        ("meta", _field(r, "meta")),
        ("result", _field(r, "result") if r.state == "completed" else "-"),
        ("result ttl", f"{r.result_ttl:g}s"),
        ("inserted", iso(r.inserted_at)),
        ("scheduled", iso(r.scheduled_at)),
        ("attempted", iso(r.attempted_at) or "-"),
        ("finished", iso(r.finished_at) or "-"),
        ("expires", iso(r.expires_at) or "-"),
        ("lease", lease),
        ("progress", _progress(r)),
        (
            "cursor",
            _field(r, "cursor") if r.cursor is not None or "cursor" in r.undecodable else "-",
        ),
    ]
    if r.state == "running" and r.stop_request:
        fields.append(("stop", f"{r.stop_request} requested: it stops at its next yield"))
    for name in r.undecodable:  # text fields (a kind, a queue) whose bytes are not UTF-8
        if name not in ("args", "meta", "result", "errors"):
            fields.append((name.replace("_", " "), _field(r, name)))
    lines = [click.style(f"job {r.id}", bold=True)]
    for name, value in fields:
        text = str(value).replace("\n", "\n" + " " * 14)
        lines.append(f"  {name:<11} {text}")
    errors = _field(r, "errors") if "errors" in r.undecodable else len(r.errors) or "-"
    lines.append(f"  {'errors':<11} {str(errors).replace(chr(10), chr(10) + ' ' * 14)}")
    for entry in r.errors:
        kind = entry.get("kind", "error")
        at = entry.get("at")
        when = iso(float(at)) if isinstance(at, (int, float)) else at
        error = entry.get("error")
        if not isinstance(error, str):  # an entry of another shape: shown as the data it is
            error = json.dumps(entry, ensure_ascii=False, default=str)
        lines.append(f"    attempt {entry.get('attempt', '?')} at {when} ({kind}): {error}")
        tb = str(entry.get("traceback") or "").rstrip().splitlines()
        if len(tb) > _TRACEBACK_LINES:
            lines.append(f"      … {len(tb) - _TRACEBACK_LINES} earlier lines (--json has all)")
            tb = tb[-_TRACEBACK_LINES:]
        lines.extend(f"      | {t}" for t in tb)
    return "\n".join(lines)


def _progress(r: JobRecord) -> str:
    """`250 of 1000 (25.0%), estimated finish <time>`, or `-` before the job reported any."""
    p = progress_of(r)
    if p is None:
        return "-"
    text = f"{p.done} done" if p.total is None else f"{p.done} of {p.total}"
    if p.percent is not None:
        text += f" ({p.percent:.1f}%)"
    if p.eta is not None:
        text += f", estimated finish {iso(p.eta.timestamp())}"
    return text


def _field(r: JobRecord, name: str) -> str:
    """A field's value, or, when its stored data cannot be decoded, why and its raw text."""
    bad = r.undecodable.get(name)
    if bad is None:
        return _json_block(getattr(r, name))
    return f"cannot be decoded: {bad.error}\nraw: {bad.raw}"


def _json_block(value: Any) -> str:
    text = to_json_text(value)
    if len(text) <= 70:
        return text
    return json.dumps(value, indent=2, ensure_ascii=False)


def _act(
    job_ids: tuple[int, ...],
    app_path: str | None,
    url: str | None,
    as_json: bool,
    verb: str,
    allowed: tuple[str, ...],
    action: Callable[[Store, int], bool],
) -> None:
    """Apply `action` to each id; report each outcome; exit 1 if any could not be done."""
    outcomes: list[dict[str, Any]] = []
    with opened_app(app_path, url) as app:
        store = app.store
        for job_id in job_ids:
            if action(store, job_id):
                record = store.job_get(job_id)
                state = record.state if record else None
                outcomes.append({"id": job_id, "ok": True, "state": state, "error": None})
                continue
            record = store.job_get(job_id)
            if record is None:
                error = f"job {job_id} does not exist (it may have been pruned)"
                state = None
            else:
                state = record.state
                error = f"job {job_id} is {state}: only {_one_of(allowed)} jobs can be {verb}"
                if verb == "cancelled":
                    error += " (a running one is asked to stop)"
            outcomes.append({"id": job_id, "ok": False, "state": state, "error": error})
    if as_json:
        print_json(outcomes)
    else:
        for o in outcomes:
            if o["ok"]:
                now = "" if o["state"] is None else f" (now {o['state']})"
                if verb == "cancelled" and o["state"] == "running":
                    now = " (running: asked to stop; an iteration job ends at its next yield)"
                click.echo(f"{verb} job {o['id']}{now}")
            else:
                click.echo(f"Error: {o['error']}", err=True)
    failed = sum(1 for o in outcomes if not o["ok"])
    if failed:
        raise click.exceptions.Exit(1)


def _ids_or_filter(
    action: str,
    job_ids: tuple[int, ...],
    states: tuple[str, ...],
    filters: dict[str, Any],
    flags: dict[str, bool],
    app_path: str | None,
    url: str | None,
    as_json: bool,
) -> None:
    """Act on the jobs named by id (each reported), or on every job a filter matches."""
    if not job_ids:
        run_bulk(action, states, filters, app_path=app_path, url=url, as_json=as_json, **flags)
        return
    if states or any(v for v in filters.values()) or flags["every"]:
        raise UsageFailure("give job ids or a filter, not both")
    if flags["dry_run"]:
        raise UsageFailure("--dry-run counts the jobs a filter matches; it takes no job ids")
    verb, allowed, op = _SINGLE[action]
    _act(job_ids, app_path, url, as_json, verb, allowed, op)


def _split(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, bool]]:
    """The filter options apart from --all, --dry-run and --yes."""
    flags = {name: bool(options.pop(name)) for name in ("every", "dry_run", "yes")}
    return options, flags


_BULK_HELP = """
    With a filter instead of ids, it acts on every matching job it applies to: it prints the
    count, asks on a terminal (unless --yes) and refuses without any filter unless --all is
    given. --dry-run only counts. Times are a duration ago (30m, 2d) or an ISO time (UTC
    unless it says otherwise).
"""


@jobs.command("retry")
@click.argument("job_ids", metavar="[ID]...", nargs=-1, type=int)
@bulk_options
@store_options
@json_option
@friendly_errors
def retry_jobs(
    job_ids: tuple[int, ...],
    states: tuple[str, ...],
    app_path: str | None,
    url: str | None,
    as_json: bool,
    **options: Any,
) -> None:
    """Run jobs again now: dead, cancelled, shed, completed, retryable or scheduled ones.

    A dead job gets one more attempt beyond its max_attempts. Exit code 1 if any id could not
    be retried (unknown, or running).

    \b
      offload jobs retry 42 43
      offload jobs retry --state dead --kind send_email --since 1h --dry-run
      offload jobs retry --state dead --error-contain "timed out" --yes
    """
    filters, flags = _split(options)
    _ids_or_filter("retry", job_ids, states, filters, flags, app_path, url, as_json)


@jobs.command("cancel")
@click.argument("job_ids", metavar="[ID]...", nargs=-1, type=int)
@bulk_options
@store_options
@json_option
@friendly_errors
def cancel_jobs(
    job_ids: tuple[int, ...],
    states: tuple[str, ...],
    app_path: str | None,
    url: str | None,
    as_json: bool,
    **options: Any,
) -> None:
    """Cancel jobs: scheduled, available or retryable ones at once; a running one (by id) is
    asked to stop, as `job.cancel()` does (an iteration job ends cancelled at its next yield).

    Exit code 1 if any id could not be cancelled (unknown or already finished). A filter
    cancels only jobs that wait.

    \b
      offload jobs cancel 42
      offload jobs cancel --queue imports --args-contain acme.com --yes
    """
    filters, flags = _split(options)
    _ids_or_filter("cancel", job_ids, states, filters, flags, app_path, url, as_json)


@jobs.command("discard")
@click.argument("job_ids", metavar="[ID]...", nargs=-1, type=int)
@bulk_options
@store_options
@json_option
@friendly_errors
def discard_jobs(
    job_ids: tuple[int, ...],
    states: tuple[str, ...],
    app_path: str | None,
    url: str | None,
    as_json: bool,
    **options: Any,
) -> None:
    """Delete jobs in any state; what they counted stays in the metrics' totals.

    A running job's worker is fenced off: its outcome is refused as stale. Exit code 1 if any
    id does not exist.

    \b
      offload jobs discard 42
      offload jobs discard --state dead --finished-until 7d --dry-run
    """
    filters, flags = _split(options)
    _ids_or_filter("discard", job_ids, states, filters, flags, app_path, url, as_json)


for _command in (retry_jobs, cancel_jobs, discard_jobs):
    _command.help = (_command.help or "") + _BULK_HELP


def _one_of(words: tuple[str, ...]) -> str:
    """'a, b or c'."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _retry(store: Store, job_id: int) -> bool:
    return store.job_retry(job_id)


def _cancel(store: Store, job_id: int) -> bool:
    """Cancel a waiting job, or ask a running one to stop, as `job.cancel()` does."""
    return store.job_cancel(job_id) or store.job_request_stop(job_id, "cancel")


def _discard(store: Store, job_id: int) -> bool:
    return store.job_discard(job_id)


_SINGLE: dict[str, tuple[str, tuple[str, ...], Callable[[Store, int], bool]]] = {
    "retry": ("retried", RETRYABLE_FROM, _retry),
    "cancel": ("cancelled", CANCELLABLE_FROM, _cancel),
    "discard": ("discarded", DISCARDABLE_FROM, _discard),
}
