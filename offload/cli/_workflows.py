"""`offload workflows …`: list, show and cancel workflows (chains, groups, graphs, sagas),
straight from the store (docs/workflows.md)."""

from __future__ import annotations

import dataclasses
from typing import Any

import click

from offload.cli._common import Failure, friendly_errors, json_option, opened_app, store_options
from offload.cli._output import iso, print_json, state_label, table, terminal_width, to_json_text
from offload.store._workflows import KINDS, WORKFLOW_STATES, WorkflowFilter, WorkflowRecord


@click.group("workflows")
def workflows() -> None:
    """Inspect workflows and sagas: list, show, cancel."""


def _dict(r: WorkflowRecord) -> dict[str, Any]:
    data = dataclasses.asdict(r)
    for key in ("inserted_at", "updated_at", "finished_at"):
        data[key] = iso(data[key])
    if not r.steps:
        data.pop("steps")
    return data


@workflows.command("list")
@click.option(
    "-s",
    "--state",
    "states",
    multiple=True,
    type=click.Choice(WORKFLOW_STATES, case_sensitive=False),
    help="Only workflows in this state (repeat for several).",
)
@click.option("-k", "--kind", type=click.Choice(KINDS), help="Only workflows of this kind.")
@click.option("-n", "--limit", default=50, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--before", "before_id", type=click.IntRange(1), metavar="ID")
@store_options
@json_option
@friendly_errors
def list_workflows(
    states: tuple[str, ...],
    kind: str | None,
    limit: int,
    before_id: int | None,
    app_path: str | None,
    url: str | None,
    as_json: bool,
) -> None:
    """List workflows, newest first.

    \b
      offload workflows list --state stuck
      offload workflows list --kind saga --json
    """
    flt = WorkflowFilter([s.lower() for s in states] or None, kind, limit, before_id)
    with opened_app(app_path, url) as app:
        records = app.store.workflow_list(flt)
    if as_json:
        print_json([_dict(r) for r in records])
        return
    if not records:
        click.echo("no workflows match", err=True)
        return
    rows = [
        [
            r.id,
            r.kind,
            r.name or "-",
            state_label(r.state),
            iso(r.inserted_at, "seconds"),
            iso(r.finished_at, "seconds") or "-",
        ]
        for r in records
    ]
    headers = ["ID", "KIND", "NAME", "STATE", "INSERTED", "FINISHED"]
    click.echo(table(headers, rows, numeric=[0], width=terminal_width()))


@workflows.command("show")
@click.argument("workflow_id", metavar="ID", type=int)
@store_options
@json_option
@friendly_errors
def show_workflow(workflow_id: int, app_path: str | None, url: str | None, as_json: bool) -> None:
    """Show a workflow and each of its steps: its state, its job and its result."""
    with opened_app(app_path, url) as app:
        record = app.store.workflow_get(workflow_id)
    if record is None:
        raise Failure(f"workflow {workflow_id} does not exist")
    if as_json:
        print_json(_dict(record))
        return
    lines = [
        f"workflow {record.id} ({record.kind}{', ' + record.name if record.name else ''}): "
        f"{record.state}",
        f"inserted {iso(record.inserted_at, 'seconds')}"
        + (f", finished {iso(record.finished_at, 'seconds')}" if record.finished_at else ""),
    ]
    if record.state == "stuck":
        lines.append(
            "stuck: an undo job ended dead or cancelled; fix its cause and retry it "
            "(offload jobs retry ID) to go on compensating"
        )
    rows = [
        [
            s.name,
            s.role,
            s.kind,
            ", ".join(s.depends_on) or "-",
            state_label(s.state),
            s.job_id if s.job_id is not None else "-",
            to_json_text(s.result, 40) if s.state == "completed" else "-",
        ]
        for s in record.steps
    ]
    headers = ["STEP", "ROLE", "KIND", "AFTER", "STATE", "JOB", "RESULT"]
    lines.append(table(headers, rows, width=terminal_width()))
    click.echo("\n".join(lines))


@workflows.command("cancel")
@click.argument("workflow_id", metavar="ID", type=int)
@store_options
@friendly_errors
def cancel_workflow(workflow_id: int, app_path: str | None, url: str | None) -> None:
    """Cancel a running workflow: its waiting step jobs are cancelled, its running ones asked
    to stop; a saga compensates."""
    with opened_app(app_path, url) as app:
        done = app.store.workflow_cancel(workflow_id)
    if not done:
        raise Failure(f"workflow {workflow_id} is not running (or does not exist)")
    click.echo(f"workflow {workflow_id} cancelled")
