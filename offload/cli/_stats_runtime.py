"""The run-time part of `offload stats`: job types that ran past their max_run_time without
being able to stop, or whose async code blocked a worker's event loop (docs/run-time.md)."""

from __future__ import annotations

from typing import Any

import click

from offload.cli._output import iso, table
from offload.store._contract import Store
from offload.store._runtime import KindRunTime


def runtime_rows(reports: list[KindRunTime], now: float) -> list[dict[str, Any]]:
    """The run-time reports as JSON-ready data (shared with the HTTP API and the dashboard)."""
    return [
        {
            "kind": r.kind,
            "queue": r.queue,
            "owner": r.owner,
            "max_run_time": r.max_run_time,
            "overruns": r.overruns,
            "worst_seconds": round(r.worst_seconds, 3),
            "typical_seconds": None if r.typical_seconds is None else round(r.typical_seconds, 3),
            "last_overrun_at": iso(r.last_overrun_at),
            "loop_blocks": r.blocks,
            "worst_block_seconds": round(r.worst_block, 3),
            "last_block_at": iso(r.last_block_at),
            "deprioritized": r.overrunning(now),
        }
        for r in reports
    ]


def collect_runtime(store: Store, now: float) -> dict[str, Any]:
    """`{"run_time": [...]}`: one entry per reported kind."""
    return {"run_time": runtime_rows(store.kind_runtimes(), now)}


def render_runtime(snap: dict[str, Any]) -> list[str]:
    """Lines for the person reading `offload stats`; nothing when no kind was reported."""
    kinds = snap["run_time"]
    if not kinds:
        return []
    out = ["", click.style("Over max run time (not interruptible)", bold=True)]
    out.append(
        table(
            ["KIND", "OWNER", "LIMIT", "OVERRUNS", "WORST", "TYPICAL", "LOOP BLOCKS", "LAST"],
            [
                [
                    k["kind"] + (" (deprioritized)" if k["deprioritized"] else ""),
                    k["owner"] or "-",
                    "-" if k["max_run_time"] is None else f"{k['max_run_time']:g}s",
                    k["overruns"],
                    _secs(k["worst_seconds"] if k["overruns"] else None),
                    _secs(k["typical_seconds"]),
                    f"{k['loop_blocks']} (worst {k['worst_block_seconds']:.1f}s)"
                    if k["loop_blocks"]
                    else "0",
                    max(k["last_overrun_at"] or "", k["last_block_at"] or "") or "-",
                ]
                for k in kinds
            ],
            numeric=[3],
            indent="  ",
        )
    )
    return out


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"
