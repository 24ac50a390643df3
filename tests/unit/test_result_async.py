"""`Job.result_async` holds no thread while it waits: more waiters than the async bridge has
threads leave it free for every other async call."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

from offload import Offload
from offload.store._contract import ClaimParams, Completion

GUARD = 30.0  # seconds: a guard against hanging when the bridge is starved, not a measurement


def test_waiters_leave_the_bridge_free_for_other_calls(tmp_path: Path) -> None:
    app = Offload(f"sqlite:///{tmp_path / 'jobs.db'}")

    @app.job()
    def answer() -> int:
        return 42

    async def scenario() -> None:
        job = await app.enqueue_async("answer")  # also starts the bridge
        assert app._bridge is not None
        threads = app._bridge._max_workers
        n = threads + 4
        loop = asyncio.get_running_loop()
        looked = asyncio.Event()  # set once every waiter has looked at the job at least once
        looks = itertools.count(1)
        job_get = app.store.job_get

        def counted(job_id: int) -> Any:
            if next(looks) == n:
                loop.call_soon_threadsafe(looked.set)
            return job_get(job_id)

        handles = [app.get_job(job.id) for _ in range(n)]
        app.store.job_get = counted  # type: ignore[method-assign]
        waiters = [asyncio.create_task(h.result_async()) for h in handles]
        await asyncio.wait_for(looked.wait(), GUARD)

        # Another async call completes while every waiter still waits.
        other = await asyncio.wait_for(app.enqueue_async("answer"), GUARD)
        assert other.state == "available"
        assert not any(w.done() for w in waiters)

        # The event that releases the waiters: the job completes.
        def complete() -> None:
            [claimed] = app.store.job_claim(ClaimParams(["default"], 1, "test", 60.0))
            assert claimed.id == job.id
            app.store.job_complete_many([Completion(claimed.id, claimed.lease_token, 42)])

        await asyncio.to_thread(complete)
        results = await asyncio.wait_for(asyncio.gather(*waiters), GUARD)
        assert results == [42] * len(waiters)

    try:
        asyncio.run(scenario())
    finally:
        app.close()
