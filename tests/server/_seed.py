"""An application with an hour of history, for dashboard tests and the docs screenshot.

History is written through the store contract while the store's clock is moved back, so that
jobs finished over the last hour (the contract has no way to backdate, and should not).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from offload import Offload
from offload.store._contract import (
    ClaimParams,
    Completion,
    Failure,
    NewJob,
    Store,
    WorkerInfo,
)


def demo_app(url: str) -> Offload:
    app = Offload(url)

    @app.job(queue="emails", max_attempts=5, slo=1.0)
    def send_welcome(user_id: int, locale: str = "en") -> str:
        return f"sent to {user_id}"

    @app.job(queue="media", slo=5.0)
    def resize(image_id: int, sizes: list[int] | None = None) -> dict[str, Any]:
        return {"image_id": image_id, "sizes": sizes or [64, 256]}

    @app.job(queue="webhooks", max_attempts=3)
    def deliver_webhook(url: str, event: str) -> None:
        raise RuntimeError(f"POST {url} answered 503")

    @app.job(queue="default")
    def nightly_report(day: str = "today") -> str:
        return "done"

    app.schedule("nightly-report", "0 3 * * *", nightly_report, "yesterday")
    app.schedule("cleanup", "*/15 * * * *", nightly_report)
    return app


@contextmanager
def clock(store: Store, at: float) -> Iterator[None]:
    original = store.now
    store.now = lambda: at  # type: ignore[method-assign]
    try:
        yield
    finally:
        store.now = original  # type: ignore[method-assign]


def seed_history(app: Offload, minutes: int = 60, seed: int = 7) -> None:
    """Jobs completed and failed minute by minute over the last `minutes`, plus a backlog."""
    rng = random.Random(seed)
    store = app.store
    real_now = time.time()
    for minute in range(minutes, 0, -1):
        start = real_now - minute * 60
        wave = 6 + int(5 * (1 + __import__("math").sin(minute / 7))) + rng.randint(0, 4)
        jobs = [
            NewJob("send_welcome", "emails", {"user_id": rng.randint(1, 9999)}, slo=1.0)
            for _ in range(wave)
        ]
        jobs += [
            NewJob("resize", "media", {"image_id": rng.randint(1, 9999)}, slo=5.0)
            for _ in range(wave // 2)
        ]
        webhook = rng.random() < 0.35
        if webhook:
            jobs.append(
                NewJob(
                    "deliver_webhook",
                    "webhooks",
                    {"url": "https://example.com/hook", "event": "order.paid"},
                    max_attempts=1,
                )
            )
        with clock(store, start):
            store.job_insert_many(jobs)
        with clock(store, start + rng.uniform(0.05, 2.0)):
            claimed = store.job_claim(ClaimParams(["emails", "media", "webhooks"], 100, "seed", 60))
        done, failed = [], []
        for job in claimed:
            if job.kind == "deliver_webhook" or rng.random() < 0.03:
                failed.append(
                    Failure(
                        job.id,
                        job.lease_token,
                        "RuntimeError: POST https://example.com/hook answered 503",
                        'Traceback (most recent call last):\n  File "hooks.py", line 12, in '
                        "deliver_webhook\n    raise RuntimeError(...)\nRuntimeError: POST "
                        "https://example.com/hook answered 503",
                        None if job.kind == "deliver_webhook" else 30.0,
                    )
                )
            else:
                done.append(Completion(job.id, job.lease_token, {"ok": True}))
        with clock(store, start + rng.uniform(2.0, 20.0)):
            store.job_complete_many(done)
            store.job_fail_many(failed)
    # a backlog, jobs in flight, a scheduled one and a live worker
    store.job_insert_many(
        [NewJob("send_welcome", "emails", {"user_id": i}) for i in range(40)]
        + [NewJob("resize", "media", {"image_id": i}) for i in range(12)]
        + [NewJob("nightly_report", "default", {}, delay=3600)]
    )
    worker = WorkerInfo(
        "web-1:4242:a1b2c3", "web-1", 4242, ["emails", "media"], real_now - 5400, 0, 3
    )
    store.worker_beat(worker)
    store.job_claim(ClaimParams(["emails", "media"], 3, worker.id, 600))
