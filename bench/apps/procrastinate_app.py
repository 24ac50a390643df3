"""Procrastinate on PostgreSQL (psycopg 3 connector)."""

from __future__ import annotations

import os

from procrastinate import App, PsycopgConnector

from bench._recorder import record

URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/bench_procrastinate")
app = App(connector=PsycopgConnector(conninfo=URL))


@app.task(name="noop")
async def noop(i: int, t: float | None = None) -> None:
    record(i, t)
