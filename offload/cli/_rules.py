"""`offload rules …`: blackhole rules, changed at run time without a redeploy.

    offload rules add --kind ImportJob --where 'args.customer_id == 123' --expires 1h \\
        --reason "customer 123 floods the importer"
    offload rules list
    offload rules remove 3

Jobs that match a live rule are not run: workers shed them when they claim them (a rule
reaches every worker within a second) and an enqueue stores them directly as `shed`. A bad
`--where` is a usage error (exit 2) that names the problem.
"""

from __future__ import annotations

import re
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
from offload.dispatch._rules import Rule

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str, option: str = "--expires") -> float:
    """Seconds from `90`, `90s`, `15m`, `1h30m`, `1.5h`, `2d` or `1w`."""
    cleaned = text.strip().lower().replace(" ", "")
    try:
        value = float(cleaned)
    except ValueError:
        value = -1.0
        if cleaned and _PART.sub("", cleaned) == "":
            value = sum(float(n) * _UNITS[u] for n, u in _PART.findall(cleaned))
    if not value > 0 or value == float("inf"):
        raise UsageFailure(
            f"{option} {text!r} is not a duration: give seconds or e.g. 90s, 15m, 1h30m, 2d"
        )
    return value


def rule_dict(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "kind": rule.kind,
        "where": rule.where,
        "reason": rule.reason,
        "created_at": iso(rule.created_at),
        "expires_at": iso(rule.expires_at),
    }


@click.group("rules")
def rules() -> None:
    """Blackhole rules: jobs that match one are shed instead of run."""


@rules.command("add")
@click.option("-k", "--kind", help="Only jobs of this job type (default: any type).")
@click.option(
    "-w",
    "--where",
    metavar="EXPR",
    help="A condition on the job, e.g. 'args.customer_id == 123' (default: every job of --kind).",
)
@click.option(
    "--expires",
    metavar="DURATION",
    help="Stop applying after this long: seconds, or e.g. 30m, 1h, 2d (default: never).",
)
@click.option("--reason", default="", help="Why; recorded on every job the rule sheds.")
@store_options
@json_option
@friendly_errors
def add_rule(
    kind: str | None,
    where: str | None,
    expires: str | None,
    reason: str,
    app_path: str | None,
    url: str | None,
    as_json: bool,
) -> None:
    """Add a rule; matching jobs are shed from now on, by every worker within a second.

    \b
      offload rules add --kind ImportJob --where 'args.customer_id == 123'
      offload rules add --where 'tenant == "acme" and queue == "reports"' --expires 1h

    \b
    Fields: args.<name>[.<name>…], meta.<name>…, kind, queue, tenant. Values: numbers,
    "strings", true, false, null, [lists]. Operators: == != < <= > >= in, not in, and, or, not.
    """
    if kind is None and where is None:
        raise UsageFailure(
            "give --kind, --where or both: a rule without either would shed all work"
        )
    seconds = None if expires is None else parse_duration(expires)
    with opened_app(app_path, url) as app:
        rule = app.rules.add(kind=kind, where=where, expires=seconds, reason=reason)
    if as_json:
        print_json(rule_dict(rule))
        return
    until = f", until {iso(rule.expires_at, 'seconds')}" if rule.expires_at else ""
    click.echo(
        f"added rule {rule.id}: kind {rule.kind or 'any'} where {rule.where or 'every job'}{until}"
    )


@rules.command("list")
@click.option("--all", "include_expired", is_flag=True, help="Also rules that have expired.")
@store_options
@json_option
@friendly_errors
def list_rules(include_expired: bool, app_path: str | None, url: str | None, as_json: bool) -> None:
    """List the rules in force (oldest first)."""
    with opened_app(app_path, url) as app:
        found = app.rules.list(include_expired=include_expired)
    if as_json:
        print_json([rule_dict(r) for r in found])
        return
    if not found:
        click.echo("no rules", err=True)
        return
    rows = [
        [
            r.id,
            r.kind or "*",
            r.where or "(every job)",
            iso(r.created_at, "seconds"),
            iso(r.expires_at, "seconds") or "never",
            r.reason or "-",
        ]
        for r in found
    ]
    headers = ["ID", "KIND", "WHERE", "CREATED", "EXPIRES", "REASON"]
    click.echo(table(headers, rows, numeric=[0], width=terminal_width()))


@rules.command("remove")
@click.argument("rule_ids", metavar="ID...", nargs=-1, required=True, type=int)
@store_options
@json_option
@friendly_errors
def remove_rules(
    rule_ids: tuple[int, ...], app_path: str | None, url: str | None, as_json: bool
) -> None:
    """Remove rules by id; exit code 1 if any id is unknown."""
    outcomes = []
    with opened_app(app_path, url) as app:
        for rule_id in rule_ids:
            outcomes.append({"id": rule_id, "removed": app.rules.remove(rule_id)})
    if as_json:
        print_json(outcomes)
    else:
        for o in outcomes:
            if o["removed"]:
                click.echo(f"removed rule {o['id']}")
            else:
                click.echo(f"Error: there is no rule {o['id']}", err=True)
    if not all(o["removed"] for o in outcomes):
        raise click.exceptions.Exit(1)
