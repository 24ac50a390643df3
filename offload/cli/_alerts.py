"""`offload alerts …`: alert rules added at run time, and what fires.

    offload alerts add mail-backlog --condition queue_depth --target mail --above 1000 --for 5m
    offload alerts add no-workers --condition workers_alive --below 1 --webhook https://…
    offload alerts list
    offload alerts history
    offload alerts remove mail-backlog

The maintenance leader evaluates every rule (declared with `app.alert(...)` or added here) each
round; `list` shows each with whether it fires now.
"""

from __future__ import annotations

from typing import Any

import click

from offload._errors import ConfigurationError, InvalidArgumentsError
from offload.app._alerts import ABOVE, CONDITIONS
from offload.cli._common import (
    UsageFailure,
    friendly_errors,
    json_option,
    opened_app,
    store_options,
)
from offload.cli._output import iso, print_json, table, terminal_width
from offload.cli._rules import parse_duration


@click.group("alerts")
def alerts() -> None:
    """Alert rules on queue depth, lag, SLOs, dead jobs and workers, and their history."""


@alerts.command("add")
@click.argument("name")
@click.option(
    "-c",
    "--condition",
    required=True,
    type=click.Choice(sorted(CONDITIONS)),
    help="What to watch.",
)
@click.option("-t", "--target", help="The queue (or job type, for slo_attainment); default any.")
@click.option("--above", type=float, help="Fire when the value is above this.")
@click.option("--below", type=float, help="Fire when the value is below this.")
@click.option(
    "--for",
    "lasting",
    metavar="DURATION",
    help="Only once breached this long, e.g. 5m (default: at once).",
)
@click.option("--webhook", metavar="URL", help="POST firing and resolved events here, signed.")
@store_options
@json_option
@friendly_errors
def add_alert(
    name: str,
    condition: str,
    target: str | None,
    above: float | None,
    below: float | None,
    lasting: str | None,
    webhook: str | None,
    app_path: str | None,
    url: str | None,
    as_json: bool,
) -> None:
    """Add (or replace) an alert rule; the leader evaluates it from its next round.

    \b
      offload alerts add mail-backlog -c queue_depth -t mail --above 1000 --for 5m
      offload alerts add lagging -c oldest_job_age --above 120
      offload alerts add late -c slo_attainment -t report --below 0.95
      offload alerts add no-workers -c workers_alive --below 1 --webhook https://ops.example.com/hook
    """
    spec = CONDITIONS[condition]
    wanted, other = ("--above", "--below") if spec.direction == ABOVE else ("--below", "--above")
    threshold = above if spec.direction == ABOVE else below
    if (below if spec.direction == ABOVE else above) is not None or threshold is None:
        raise UsageFailure(
            f"{condition} fires {spec.direction} a threshold: give {wanted}, not {other}"
        )
    seconds = 0.0 if lasting is None else parse_duration(lasting, "--for")
    with opened_app(app_path, url) as app:
        try:
            rule = app.alerts.add(
                name, condition, threshold, target=target, for_seconds=seconds, webhook=webhook
            )
        except (ConfigurationError, InvalidArgumentsError) as exc:
            raise UsageFailure(str(exc)) from None
    if as_json:
        print_json(rule.as_dict())
        return
    click.echo(f"added alert {rule.name}: {rule.describe()}")


def _rows(app: Any) -> list[dict[str, Any]]:
    states = app.alerts.states()
    out = []
    for rule in app.alerts.rules():
        state = states.get(rule.name)
        out.append(
            {
                **rule.as_dict(),
                "firing": bool(state and state.firing),
                "since": iso(state.since) if state else None,
                "value": state.value if state else None,
            }
        )
    return out


@alerts.command("list")
@store_options
@json_option
@friendly_errors
def list_alerts(app_path: str | None, url: str | None, as_json: bool) -> None:
    """List the alert rules (declared in the app and added at run time) and which fire."""
    with opened_app(app_path, url) as app:
        found = _rows(app)
    if as_json:
        print_json(found)
        return
    if not found:
        click.echo("no alerts", err=True)
        return
    rows = [
        [
            r["name"],
            "FIRING" if r["firing"] else "ok",
            r["description"],
            r["source"],
            r["since"] or "-",
            r["webhook"] or "-",
        ]
        for r in found
    ]
    headers = ["NAME", "STATE", "RULE", "FROM", "FIRING SINCE", "WEBHOOK"]
    click.echo(table(headers, rows, width=terminal_width()))


@alerts.command("history")
@click.option("-n", "--limit", default=20, show_default=True, type=click.IntRange(1, 10000))
@click.option("--name", help="Only this alert.")
@store_options
@json_option
@friendly_errors
def alert_history(
    limit: int, name: str | None, app_path: str | None, url: str | None, as_json: bool
) -> None:
    """Alerts that fired and resolved, newest first."""
    with opened_app(app_path, url) as app:
        events = app.alerts.history(limit, name)
    found = [
        {
            "id": e.id,
            "alert": e.name,
            "state": e.state,
            "value": e.value,
            "threshold": e.threshold,
            "message": e.message,
            "at": iso(e.at),
        }
        for e in events
    ]
    if as_json:
        print_json(found)
        return
    if not found:
        click.echo("no alert has fired", err=True)
        return
    rows = [[e["at"], e["alert"], e["state"], e["message"]] for e in found]
    click.echo(table(["AT", "ALERT", "STATE", "MESSAGE"], rows, width=terminal_width()))


@alerts.command("remove")
@click.argument("names", metavar="NAME...", nargs=-1, required=True)
@store_options
@json_option
@friendly_errors
def remove_alerts(
    names: tuple[str, ...], app_path: str | None, url: str | None, as_json: bool
) -> None:
    """Remove run-time alert rules by name; exit code 1 if any is unknown."""
    outcomes = []
    with opened_app(app_path, url) as app:
        for name in names:
            outcomes.append({"name": name, "removed": app.alerts.remove(name)})
    if as_json:
        print_json(outcomes)
    else:
        for o in outcomes:
            if o["removed"]:
                click.echo(f"removed alert {o['name']}")
            else:
                click.echo(f"Error: there is no run-time alert {o['name']}", err=True)
    if not all(o["removed"] for o in outcomes):
        raise click.exceptions.Exit(1)
