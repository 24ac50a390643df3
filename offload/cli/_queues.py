"""`offload queues …` and `offload kinds …`: pause and resume queues and job types at run time.

    offload queues pause emails --reason "mail provider down"
    offload queues list
    offload queues resume emails
    offload kinds pause ResizeImage

A paused queue or kind keeps its jobs queued: no worker claims them until it is resumed, and
every worker sees the change within a second. Running jobs of it are asked to stop (an iteration
job stops at its next yield and is put back, its cursor kept); other running jobs finish.
"""

from __future__ import annotations

import getpass
import socket
from typing import Any

import click

from offload.cli._common import (
    UsageFailure,
    friendly_errors,
    json_option,
    opened_app,
    store_options,
)
from offload.cli._output import iso, print_json, table, terminal_width
from offload.store._contract import Store
from offload.store._pauses import KIND, QUEUE, Pause, check_pause


def pause_dict(p: Pause) -> dict[str, Any]:
    return {
        "scope": p.scope,
        "name": p.name,
        "paused_by": p.paused_by,
        "paused_at": iso(p.paused_at),
        "reason": p.reason,
    }


def _who() -> str:
    """Who pauses from this terminal: user@host."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name to be found (a container without one)
        user = "?"
    return f"{user}@{socket.gethostname()}"


def _checked(scope: str, name: str, reason: str = "") -> None:
    try:
        check_pause(scope, name, reason)
    except ValueError as exc:
        raise UsageFailure(str(exc)) from None


def _known(store: Store, scope: str, declared: set[str]) -> dict[str, dict[str, int]]:
    """Names of the scope the store and the app know, each with its available and running
    jobs (queues; kinds count none here: per-kind counts would scan every job)."""
    names: dict[str, dict[str, int]] = {n: {} for n in declared}
    if scope == QUEUE:
        for c in store.job_counts():
            counts = names.setdefault(c.queue, {})
            if c.state in ("available", "running"):
                counts[c.state] = c.count
    else:
        for t in store.job_totals():
            names.setdefault(t.kind, {})
    return names


def _group(scope: str, plural: str, example: str) -> click.Group:
    """The `pause`, `resume` and `list` commands of one scope."""

    @click.group(plural, help=f"Pause and resume {plural} at run time.")
    def group() -> None:
        pass

    @group.command("pause")
    @click.argument("names", metavar="NAME...", nargs=-1, required=True)
    @click.option("--reason", default="", help="Why; shown with the pause.")
    @click.option("--by", "by", default=None, help="Who pauses (default: user@host).")
    @store_options
    @json_option
    @friendly_errors
    def pause(
        names: tuple[str, ...],
        reason: str,
        by: str | None,
        app_path: str | None,
        url: str | None,
        as_json: bool,
    ) -> None:
        for name in names:
            _checked(scope, name, reason)
        out = []
        with opened_app(app_path, url) as app:
            for name in names:
                added = app.store.pause_add(scope, name, by=by or _who(), reason=reason)
                out.append(
                    {**pause_dict(added.pause), "new": added.new, "stopping": added.stopping}
                )
        if as_json:
            print_json(out)
            return
        for o in out:
            was = "" if o["new"] else " (it was paused already)"
            stopping = f"; {o['stopping']} running job(s) asked to stop" if o["stopping"] else ""
            click.echo(f"paused {scope} {o['name']}{was}{stopping}")

    pause.help = (
        f"Pause {plural}: their jobs stay queued and no worker claims them until resumed.\n\n"
        f"\b\n  offload {plural} pause {example} --reason 'provider down'"
    )

    @group.command("resume")
    @click.argument("names", metavar="NAME...", nargs=-1, required=True)
    @store_options
    @json_option
    @friendly_errors
    def resume(
        names: tuple[str, ...], app_path: str | None, url: str | None, as_json: bool
    ) -> None:
        for name in names:
            _checked(scope, name)
        out = []
        with opened_app(app_path, url) as app:
            for name in names:
                out.append(
                    {"scope": scope, "name": name, "resumed": app.store.pause_remove(scope, name)}
                )
        if as_json:
            print_json(out)
        else:
            for o in out:
                if o["resumed"]:
                    click.echo(f"resumed {scope} {o['name']}")
                else:
                    click.echo(f"{scope} {o['name']} was not paused", err=True)

    resume.help = (
        f"Resume paused {plural}: workers claim their jobs again within a second. Resuming one "
        "that is not paused changes nothing (said on stderr; exit code 0)."
    )

    @group.command("list")
    @click.option("--paused", "only_paused", is_flag=True, help=f"Only paused {plural}.")
    @store_options
    @json_option
    @friendly_errors
    def list_(only_paused: bool, app_path: str | None, url: str | None, as_json: bool) -> None:
        with opened_app(app_path, url) as app:
            store = app.store
            pauses = {p.name: p for p in store.pause_list() if p.scope == scope}
            declared = {
                t.options_.queue if scope == QUEUE else name for name, t in app.jobs.items()
            }
            known = {} if only_paused else _known(store, scope, declared)
        rows = []
        for name in sorted(set(known) | set(pauses)):
            p = pauses.get(name)
            row: dict[str, Any] = {"name": name, "paused": p is not None}
            if scope == QUEUE:
                counts = known.get(name, {})
                row["available"] = counts.get("available", 0)
                row["running"] = counts.get("running", 0)
            row["pause"] = None if p is None else pause_dict(p)
            rows.append(row)
        if as_json:
            print_json(rows)
            return
        if not rows:
            click.echo(f"no {plural}" if not only_paused else f"no paused {plural}", err=True)
            return
        headers = [scope.upper(), "STATE"]
        if scope == QUEUE:
            headers += ["AVAILABLE", "RUNNING"]
        headers += ["PAUSED AT", "BY", "REASON"]
        lines = []
        for r in rows:
            p = r["pause"]
            line = [r["name"], "paused" if r["paused"] else "active"]
            if scope == QUEUE:
                line += [r["available"], r["running"]]
            if p is None:
                line += ["-", "-", "-"]
            else:
                line += [
                    iso(pauses[r["name"]].paused_at, "seconds"),
                    p["paused_by"] or "-",
                    p["reason"] or "-",
                ]
            lines.append(line)
        numeric = [2, 3] if scope == QUEUE else []
        click.echo(table(headers, lines, numeric=numeric, width=terminal_width()))

    list_.help = f"List {plural}, paused or active (those the store and the app know of)."
    return group


queues = _group(QUEUE, "queues", "emails")
kinds = _group(KIND, "kinds", "ResizeImage")
