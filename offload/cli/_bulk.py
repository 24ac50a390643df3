"""Job filters on the command line, and retry, cancel or discard of every job they match.

    offload jobs retry --state dead --kind send_email --since 1h --dry-run
    offload jobs discard --queue imports --error-contain "quota exceeded" --yes

A bulk command counts the jobs first; on a terminal it shows the count and asks before it acts
(`--yes` skips the question, `--dry-run` only counts). It refuses to run without any filter
unless `--all` says that every job is meant. The store acts in bounded batches, so workers go
on while it runs (offload/store/_bulk.py).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from offload._errors import ConfigurationError
from offload._states import STATES
from offload.cli._common import Failure, UsageFailure, opened_app
from offload.cli._output import iso, print_json
from offload.cli._when import EXAMPLES, parse_when
from offload.store._bulk import APPLIES_TO, MAX_TEXT, JobMatch
from offload.store._contract import Store

F = TypeVar("F", bound=Callable[..., object])

PAST = {"retry": "retried", "cancel": "cancelled", "discard": "discarded"}
_TIMES = (
    ("since", "inserted_since", "Only jobs enqueued at or after this time"),
    ("until", "inserted_until", "Only jobs enqueued before this time"),
    ("finished_since", "finished_since", "Only jobs that finished at or after this time"),
    ("finished_until", "finished_until", "Only jobs that finished before this time"),
)


def filter_options(fn: F) -> F:
    """The filter options shared by `jobs list` and the bulk commands, beyond state, kind and
    queue: times and text searches."""
    for name, _, help_text in reversed(_TIMES):
        flag = "--" + name.replace("_", "-")
        how = f"a duration ago or a time ({EXAMPLES})" if name == "since" else "as for --since"
        fn = click.option(flag, name, metavar="WHEN", help=f"{help_text}: {how}.")(fn)
    fn = click.option(
        "--error-contain",
        "error_contain",
        metavar="TEXT",
        help="Only jobs whose last error contains this text (ignoring case).",
    )(fn)
    fn = click.option(
        "--args-contain",
        "args_contain",
        metavar="TEXT",
        help="Only jobs whose arguments, as JSON, contain this text (ignoring case).",
    )(fn)
    return fn


def bulk_options(fn: F) -> F:
    """The options of a bulk command: the whole filter, --all, --dry-run and --yes."""
    fn = click.option(
        "-y", "--yes", is_flag=True, help="Do not ask for confirmation on a terminal."
    )(fn)
    fn = click.option(
        "--dry-run", is_flag=True, help="Only count the jobs it would act on; change nothing."
    )(fn)
    fn = click.option(
        "--all",
        "every",
        is_flag=True,
        help="Act on every job the action applies to, with no filter (or with the filter given).",
    )(fn)
    fn = filter_options(fn)
    fn = click.option("-k", "--kind", help="Only jobs of this job type.")(fn)
    fn = click.option("-q", "--queue", help="Only jobs of this queue.")(fn)
    return click.option(
        "-s",
        "--state",
        "states",
        multiple=True,
        type=click.Choice(STATES, case_sensitive=False),
        help="Only jobs in this state (repeat for several).",
    )(fn)


def has_search(options: dict[str, Any]) -> bool:
    """Whether the options ask for more than state, kind and queue (so `jobs list` searches)."""
    return any(options.get(name) for name in ("args_contain", "error_contain", *_time_names()))


def _time_names() -> tuple[str, ...]:
    return tuple(name for name, _, _ in _TIMES)


def build_match(store: Store, states: tuple[str, ...], options: dict[str, Any]) -> JobMatch:
    """The JobMatch the options say, times read against the store's clock; a usage error
    that names the option at fault otherwise."""
    now = store.now()
    fields: dict[str, Any] = {
        "states": tuple(dict.fromkeys(s.lower() for s in states)) or None,
        "kind": options.get("kind"),
        "queue": options.get("queue"),
    }
    for name, field, _ in _TIMES:
        text = options.get(name)
        if text is not None:
            flag = "--" + name.replace("_", "-")
            try:
                fields[field] = parse_when(text, now, flag)
            except ConfigurationError as exc:
                raise UsageFailure(str(exc)) from None
    for name in ("args_contain", "error_contain"):
        text = options.get(name)
        if text is not None:
            flag = "--" + name.replace("_", "-")
            if not text:
                raise UsageFailure(f"{flag} needs some text to look for")
            if len(text) > MAX_TEXT:
                raise UsageFailure(f"{flag} is {len(text)} characters long; at most {MAX_TEXT}")
            fields[name] = text
    try:
        return JobMatch(**fields)
    except ConfigurationError as exc:
        raise UsageFailure(str(exc)) from None


def match_dict(match: JobMatch) -> dict[str, Any]:
    """The filter as --json shows it (times as ISO UTC, fields not given left out)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(match):
        name, value = f.name, getattr(match, f.name)
        if value is None:
            continue
        if name == "states":
            value = list(value)
        elif name.endswith(("_since", "_until")):
            value = iso(value)
        out[name] = value
    return out


def describe(match: JobMatch) -> str:
    """The filter in words, for the confirmation question."""
    parts = []
    for name, value in match_dict(match).items():
        label = name.replace("_", " ").replace("states", "state")
        shown = " or ".join(value) if isinstance(value, list) else value
        parts.append(f"{label} {shown!r}" if "contain" in name else f"{label} {shown}")
    return ", ".join(parts) if parts else "every job"


def _jobs(n: int) -> str:
    return f"{n} job" if n == 1 else f"{n} jobs"


def run_bulk(
    action: str,
    states: tuple[str, ...],
    options: dict[str, Any],
    *,
    every: bool,
    dry_run: bool,
    yes: bool,
    app_path: str | None,
    url: str | None,
    as_json: bool,
) -> None:
    """Count the matching jobs the action applies to; ask on a terminal; act; report."""
    past = PAST[action]
    if not (every or states or any(v is not None for v in options.values())):
        raise UsageFailure(
            f"say which jobs to {action}: job ids, or a filter (--state, --kind, --queue, "
            "--since, --args-contain, --error-contain ...), or --all for every job"
        )
    with opened_app(app_path, url) as app:
        store = app.store
        match = build_match(store, states, options)
        if match.states and not match.states_for(action):
            click.echo(
                f"Note: {action} applies to {', '.join(APPLIES_TO[action])} jobs only, none of "
                f"the states asked for",
                err=True,
            )
        count = store.job_bulk(action, match, dry_run=True).count
        if not dry_run and count and not yes and sys.stdin.isatty():
            question = f"{action.capitalize()} {_jobs(count)} ({describe(match)})?"
            if not click.confirm(question, default=False, err=True):
                raise Failure(f"not confirmed: no job was {past}")
        if not dry_run:
            count = store.job_bulk(action, match).count if count else 0
    if as_json:
        print_json(
            {"action": action, "dry_run": dry_run, "count": count, "match": match_dict(match)}
        )
    elif dry_run:
        click.echo(f"would {action} {_jobs(count)} (dry run: nothing was changed)")
    else:
        click.echo(f"{past} {_jobs(count)}")
