"""Turns the raw runs into medians, Markdown tables and a plot; describes the machine."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from bench._config import OBAN_PYTHON, REDIS_PEERS
from bench.systems import BACKENDS, FACTORIES, PEERS

TITLES = {
    "enqueue": "Single enqueue: 20,000 jobs, one per call, one producer (jobs/s)",
    "bulk": "Bulk enqueue: 100,000 jobs with each system's bulk API (jobs/s)",
    "drain": "Drain: 20,000 queued no-op jobs that record their run (jobs/s)",
    "latency": "Pickup latency: idle workers, 200 jobs 20 ms apart (ms, start − enqueue)",
}
LIBS = [
    "offload", "celery", "kombu", "redis", "rq", "dramatiq", "huey", "arq", "procrastinate",
    "pgqueuer", "asyncpg", "psycopg",
]  # fmt: skip


def brief(r: dict[str, Any]) -> str:
    if not r.get("ok"):
        return f"FAILED: {r.get('problem')}"
    if r["scenario"] == "latency":
        return f"p50 {r['p50']:.2f} ms  p95 {r['p95']:.2f}  p99 {r['p99']:.2f}  max {r['max']:.2f}"
    if r["scenario"] == "backlog":
        return f"claim rate at {r['size']:,} ÷ at 0 = {r['value']:.2f}"
    return f"{r['value']:,.0f} jobs/s"


# --- the machine --------------------------------------------------------------------------
def _cmd(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        return (out.stdout or out.stderr).strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def machine() -> dict[str, Any]:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    versions = {}
    for lib in LIBS:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = None
    versions["oban"] = _cmd(
        [OBAN_PYTHON, "-c", "import importlib.metadata as m; print(m.version('oban'))"]
    )
    import sqlite3

    import redis

    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(int(mem) / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "oban_python": _cmd([OBAN_PYTHON, "--version"]),
        "sqlite": sqlite3.sqlite_version,
        "postgres": _cmd(["psql", "-h127.0.0.1", "-U", "postgres", "-Atc", "SHOW server_version"]),
        "redis": redis.Redis.from_url(REDIS_PEERS).info("server").get("redis_version"),
        "load_at_end": os.getloadavg(),
        "versions": versions,
    }  # fmt: skip


def configs() -> dict[str, dict[str, str]]:
    from bench.systems import Offload

    out = {}
    for name, factory in FACTORIES.items():
        cls: Any = Offload("sqlite") if name.startswith("offload") else factory
        out[name] = {"backend": BACKENDS[name], "workers": cls.worker_config, "bulk": cls.bulk_api}
    return out


# --- medians ------------------------------------------------------------------------------
def summarize(raw: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per scenario and system: the median of the runs, or the problems seen."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in raw:
        groups.setdefault((r["scenario"], r["system"]), []).append(r)
    out: dict[str, dict[str, Any]] = {}
    for (scenario, system), runs in groups.items():
        if scenario == "backlog":
            runs = runs[-1:]  # a curve, run once: the latest one counts
        crashed = [r for r in runs if not r.get("ok") and _crash(r)]
        bad = [r for r in runs if not r.get("ok") and not _crash(r)]
        good = [r for r in runs if r.get("ok")]
        cell: dict[str, Any] = {"runs": len(runs), "ok": not bad and bool(good)}
        if crashed:
            cell["crashed"] = [str(r.get("problem"))[:300] for r in crashed]
        if bad or not good:
            cell["problem"] = "; ".join(sorted({str(r.get("problem")) for r in bad or crashed}))
        else:
            cell["value"] = statistics.median(r["value"] for r in good)
            cell["values"] = [r["value"] for r in good]
            if scenario == "latency":
                for k in ("p50", "p95", "p99", "max"):
                    cell[k] = statistics.median(r[k] for r in good)
            if scenario == "backlog":
                cell["points"] = good[-1]["points"]
        out.setdefault(scenario, {})[system] = cell
    return out


def _crash(r: dict[str, Any]) -> bool:
    """A run that died (its driver, or the database under it), as opposed to one that ran and
    lost or duplicated jobs: it is left out of the median and listed under the table."""
    return str(r.get("problem", "")).startswith(("driver failed", "timed out"))


def _best_peer(cells: dict[str, Any], backend: str | None, lower: bool) -> tuple[str, float]:
    found = [
        (name, c["value"])
        for name, c in cells.items()
        if name in PEERS and c.get("ok") and (backend is None or BACKENDS[name] == backend)
    ]
    if not found:
        return "", 0.0
    return min(found, key=lambda x: x[1]) if lower else max(found, key=lambda x: x[1])


def _fmt(v: float | None, digits: int = 0) -> str:
    return "—" if v is None else f"{v:,.{digits}f}"


def markdown(doc: dict[str, Any]) -> str:
    summary = doc["summary"]
    m = doc["machine"]
    lines = [
        f"Run {doc['started']}: {'quick (1 run per figure)' if doc['quick'] else 'full'}, "
        f"median of {doc['runs']} run(s); {m['nproc']} × {m['cpu']}, {m['ram_gib']} GiB; "
        f"Python {m['python']}, SQLite {m['sqlite']}, PostgreSQL {m['postgres']}, "
        f"Redis {m['redis']}. offload: {doc.get('offload_code', '?')}.",
        "",
    ]
    for scenario, title in TITLES.items():
        cells = summary.get(scenario)
        if not cells:
            continue
        lower = scenario == "latency"
        best_name, best = _best_peer(cells, None, lower)
        lines += [f"### {title}", ""]
        if lower:
            lines += [
                "| system | backend | p50 | p95 | p99 | max | p50 ÷ best peer p50 | "
                "÷ best same-backend peer |",
                "|---|---|--:|--:|--:|--:|--:|--:|",
            ]
        else:
            lines += [
                "| system | backend | jobs/s | × best peer | × best same-backend peer | runs |",
                "|---|---|--:|--:|--:|---|",
            ]
        order = [n for n in FACTORIES if n in cells]
        for name in order:
            c = cells[name]
            backend = BACKENDS[name]
            _, same = _best_peer(cells, backend, lower)
            label = f"**{name}**" if name.startswith("offload") else name
            if not c.get("ok"):
                cols = 7 if lower else 4
                lines.append(f"| {label} | {backend} | ✗ {c.get('problem')} |" + " |" * cols)
                continue
            v = c["value"]
            r_best = f"{v / best:.2f}" if best else "—"
            r_same = f"{v / same:.2f}" if same else "—"
            if lower:
                lines.append(
                    f"| {label} | {backend} | {c['p50']:.2f} | {c['p95']:.2f} | {c['p99']:.2f} "
                    f"| {c['max']:.2f} | {r_best} | {r_same} |"
                )
            else:
                runs = ", ".join(f"{x:,.0f}" for x in c["values"])
                if c.get("crashed"):
                    runs += f" (+{len(c['crashed'])} crashed†)"
                lines.append(f"| {label} | {backend} | {v:,.0f} | {r_best} | {r_same} | {runs} |")
        lines += ["", f"Best peer: {best_name or '—'}.", ""]
        for name in order:
            for problem in cells[name].get("crashed", []):
                lines += [f"† {name}: a run died and is left out: {problem}", ""]
    lines += _baseline(summary)
    lines += _backlog(summary)
    return "\n".join(lines) + "\n"


def _baseline(summary: dict[str, Any]) -> list[str]:
    loops = summary.get("loop", {})
    acks = summary.get("drain-ack", {})
    if not loops and not acks:
        return []
    lines = [
        "### Against the bare SQL loop (100,000 no-op jobs, nothing recorded, counted at the ack)",
        "",
        "| engine | bare loop, 1 process (jobs/s) | offload drain (jobs/s) | offload ÷ loop |",
        "|---|--:|--:|--:|",
    ]
    for engine in ("sqlite", "postgres"):
        loop = loops.get(f"loop-{engine}", {})
        ack = acks.get(f"offload-{engine}", {})
        lv = loop.get("value") if loop.get("ok") else None
        av = ack.get("value") if ack.get("ok") else None
        ratio = f"{av / lv:.2f}" if lv and av else "—"
        lv_s = _fmt(lv) if loop.get("ok", True) else f"✗ {loop.get('problem')}"
        av_s = _fmt(av) if ack.get("ok", True) else f"✗ {ack.get('problem')}"
        lines.append(f"| {engine} | {lv_s} | {av_s} | {ratio} |")
    return [*lines, ""]


def _backlog(summary: dict[str, Any]) -> list[str]:
    cells = summary.get("backlog", {})
    if not cells:
        return []
    lines = [
        "### Backlog: rates and worker RSS with the backlog in place",
        "",
        "| engine | backlog | fill (bulk) jobs/s | single enqueue jobs/s | bulk enqueue jobs/s "
        "| claim rate jobs/s | max worker RSS MiB | sum RSS MiB |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for name, c in cells.items():
        if not c.get("ok"):
            lines.append(f"| {name} | ✗ {c.get('problem')} | | | | | | |")
            continue
        for p in c["points"]:
            lines.append(
                f"| {name} | {p['level']:,} | {_fmt(p.get('fill_rate'))} | "
                f"{_fmt(p['single_rate'])} | {_fmt(p['bulk_rate'])} | {_fmt(p['claim_rate'])} | "
                f"{p['rss_max_mb']:.0f} | {p['rss_sum_mb']:.0f} |"
            )
        lines.append(f"| {name} | claim rate at largest ÷ at 0 | {c['value']:.2f} | | | | | |")
    return [*lines, ""]


def update_readme(table: str, readme: Path) -> None:
    """Put the latest tables between the README's TABLE markers."""
    text = readme.read_text()
    begin = text.index("<!-- TABLE:BEGIN")
    begin = text.index("-->", begin) + 3
    end = text.index("<!-- TABLE:END -->")
    readme.write_text(text[:begin] + "\n" + table + "\n" + text[end:])


# --- the plot -----------------------------------------------------------------------------
def plot(doc: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = doc["summary"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    colors = {"sqlite": "#2a9d8f", "postgres": "#264653", "redis": "#e76f51"}

    drain = summary.get("drain", {})
    names = [n for n in FACTORIES if n in drain]
    ax = axes[0]
    vals = [drain[n].get("value") or 0 for n in names]
    bars = ax.barh(names, vals, color=[colors[BACKENDS[n]] for n in names])
    for bar, n in zip(bars, names, strict=True):
        label = f"{drain[n]['value']:,.0f}" if drain[n].get("ok") else "✗ " + drain[n]["problem"]
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, " " + label, va="center")
    ax.invert_yaxis()
    ax.set_xlabel("jobs/s (higher is better)")
    ax.set_title("Drain: 20,000 no-op jobs, 2 cores")
    ax.set_xlim(0, max(vals + [1]) * 1.25)

    lat = summary.get("latency", {})
    names = [n for n in FACTORIES if n in lat and lat[n].get("ok")]
    ax = axes[1]
    if not names:
        ax.text(0.5, 0.5, "no latency figures in this run", ha="center", transform=ax.transAxes)
    y = range(len(names))
    for key, marker in (("p50", "o"), ("p95", "s"), ("p99", "^")):
        ax.scatter([lat[n][key] for n in names], list(y), marker=marker, label=key, zorder=3)
    ax.set_yticks(list(y), names)
    ax.invert_yaxis()
    if names:
        ax.set_xscale("log")
        ax.legend()
    ax.set_xlabel("ms, log scale (lower is better)")
    ax.set_title("Pickup latency: idle worker, 200 jobs 20 ms apart")
    ax.grid(axis="x", which="both", alpha=0.3)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colors.values()]
    fig.legend(handles, list(colors), loc="lower center", ncol=3, title="backend")
    kind = "quick, 1 run" if doc["quick"] else f"median of {doc['runs']}"
    started = doc["started"].split(" + ")[0] + (" + reruns" if " + " in doc["started"] else "")
    fig.suptitle(f"offload vs peers — {started} ({kind}); {doc['machine']['nproc']} vCPUs")
    fig.tight_layout(rect=(0, 0.08, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)
