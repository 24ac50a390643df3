"""Procrastinate on PostgreSQL (psycopg 3 connector)."""

from __future__ import annotations

import os

from procrastinate import App, PsycopgConnector

from bench import _io
from bench._recorder import record

URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/bench_procrastinate")
app = App(connector=PsycopgConnector(conninfo=URL))


@app.task(name="noop")
async def noop(i: int, t: float | None = None) -> None:
    record(i, t)


@app.task(name="io")
async def io(i: int, t: float | None = None) -> None:
    await _io.job_async(i, t)
