"""The dispatch part of `offload stats`: SLO attainment per job type, and limit keys with the
values in force (adaptive ones as they stand now)."""

from __future__ import annotations

from typing import Any

import click

from offload.cli._output import table
from offload.store._contract import Store

SLO_WINDOW = 3600.0  # seconds of started jobs that SLO attainment covers
LIMITS_SHOWN = 50


def collect_dispatch(store: Store, now: float) -> dict[str, Any]:
    """SLO attainment over the last hour and the limit keys, as JSON-ready data."""
    slo = [
        {
            "kind": s.kind,
            "started": s.started,
            "on_time": s.on_time,
            "share": round(s.share, 4),
            "late_avg_seconds": None if s.late_avg is None else round(s.late_avg, 3),
            "late_max_seconds": None if s.late_max is None else round(s.late_max, 3),
        }
        for s in store.job_slo_attainment(now - SLO_WINDOW)
    ]
    limits = [
        {
            "key": x.key,
            "concurrency": x.concurrency,
            "running": x.running,
            "rate": None if x.rate is None else round(x.rate, 4),
            "per_seconds": x.period if x.rate is not None else None,
            "tokens": None if x.tokens is None else round(x.tokens, 3),
            "fifo": x.fifo,
            "adaptive": x.adaptive,
            "floor": x.adapt_min,
            "ceiling": x.adapt_max,
            "throttles": x.throttles,
        }
        for x in store.limit_list()
    ]
    return {"slo": {"window_seconds": SLO_WINDOW, "kinds": slo}, "limits": limits}


def render_dispatch(snap: dict[str, Any]) -> list[str]:
    """Lines for the person reading `offload stats`; nothing when no SLO or limit is in use."""
    out: list[str] = []
    kinds = snap["slo"]["kinds"]
    if kinds:
        out += ["", click.style("SLO attainment (jobs started in the last hour)", bold=True)]
        out.append(
            table(
                ["KIND", "STARTED", "ON TIME", "SHARE", "LATE AVG", "LATE MAX"],
                [
                    [
                        k["kind"],
                        k["started"],
                        k["on_time"],
                        f"{100 * k['share']:.1f}%",
                        _secs(k["late_avg_seconds"]),
                        _secs(k["late_max_seconds"]),
                    ]
                    for k in kinds
                ],
                numeric=[1, 2, 3, 4, 5],
                indent="  ",
            )
        )
    limits = snap["limits"]
    if limits:
        shown = limits[:LIMITS_SHOWN]
        more = f", first {LIMITS_SHOWN} shown" if len(limits) > LIMITS_SHOWN else ""
        out += ["", click.style(f"Limits ({len(limits)} keys{more})", bold=True)]
        out.append(
            table(
                ["KEY", "CONCURRENCY", "RUNNING", "RATE", "TOKENS", "ADAPTIVE", "THROTTLES"],
                [
                    [
                        x["key"],
                        "-" if x["concurrency"] is None else x["concurrency"],
                        x["running"],
                        "-" if x["rate"] is None else f"{x['rate']:g}/{x['per_seconds']:g}s",
                        "-" if x["tokens"] is None else f"{x['tokens']:.1f}",
                        "-"
                        if x["adaptive"] is None
                        else f"{x['adaptive']} {x['floor']:g}..{x['ceiling']:g}",
                        x["throttles"],
                    ]
                    for x in shown
                ],
                numeric=[1, 2, 6],
                indent="  ",
            )
        )
    return out


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"
