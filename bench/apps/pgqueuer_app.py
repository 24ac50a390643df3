"""pgqueuer on PostgreSQL (asyncpg driver); `pgq run bench.apps.pgqueuer_app:main`."""

from __future__ import annotations

import json
import os

import asyncpg
from pgqueuer import PgQueuer
from pgqueuer.db import AsyncpgDriver
from pgqueuer.models import Job

from bench import _io
from bench._recorder import record

URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/bench_pgqueuer")


async def main() -> PgQueuer:
    conn = await asyncpg.connect(URL)
    pgq = PgQueuer(AsyncpgDriver(conn))

    @pgq.entrypoint("noop")
    async def noop(job: Job) -> None:
        args = json.loads(job.payload or b"{}")
        record(args["i"], args.get("t"))

    @pgq.entrypoint("io")
    async def io(job: Job) -> None:
        args = json.loads(job.payload or b"{}")
        await _io.job_async(args["i"], args.get("t"))

    return pgq


async def serve(batch_size: int) -> None:
    """What `pgq run` does (its CLI fails to set up logging in this release): run until
    SIGTERM."""
    import asyncio
    import signal

    pgq = await main()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, pgq.shutdown.set)
    await pgq.run(batch_size=batch_size)


if __name__ == "__main__":
    import asyncio

    asyncio.run(serve(int(os.environ.get("BENCH_PGQ_BATCH", "10"))))
