"""oban (the PyPI package, Python >= 3.12) on PostgreSQL; run by `python -m bench.apps.oban_app`."""

from __future__ import annotations

import asyncio
import os
import signal

from oban import Oban, worker

from bench import _io
from bench._recorder import record

URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/bench_oban")


@worker(queue="default", max_attempts=1)
class Noop:
    async def process(self, job):  # type: ignore[no-untyped-def]
        record(job.args["i"], job.args.get("t"))


@worker(queue="default", max_attempts=1)
class Io:
    async def process(self, job):  # type: ignore[no-untyped-def]
        await _io.job_async(job.args["i"], job.args.get("t"))


async def serve(limit: int) -> None:
    pool = await Oban.create_pool(URL, min_size=2, max_size=10)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with Oban(pool=pool, queues={"default": limit}):
        await stop.wait()
    await pool.close()


if __name__ == "__main__":
    asyncio.run(serve(int(os.environ.get("BENCH_OBAN_LIMIT", "20"))))
