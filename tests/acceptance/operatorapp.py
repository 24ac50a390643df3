"""The application of the operator commands' acceptance tests (`--burst`, `--reload`).

Imported in subprocesses as `operatorapp:app`; its store is always given with `--url`.
"""

from __future__ import annotations

import os
from pathlib import Path

from offload import Offload

app = Offload(lease_seconds=5.0, maintenance_interval=60.0)
MARKS = Path(os.environ.get("OPERATOR_MARKS", "."))


@app.job()
def work(n: int) -> int:
    """A plain job with a result."""
    return n * 2


@app.job(max_attempts=3, backoff=0)
def flaky(name: str) -> str:
    """Fails its first attempt; the retry is due at once, so a drain runs it again."""
    mark = MARKS / f"flaky-{name}"
    if not mark.exists():
        mark.touch()
        raise RuntimeError("the first attempt fails")
    return name


@app.job(max_attempts=3, backoff=3600)
def slow_retry() -> None:
    """Fails, and its retry is due in an hour: a drain leaves it retryable."""
    raise RuntimeError("try again in an hour")


@app.job()
def fan_out(n: int) -> None:
    """Enqueues `n` follow-ups while it runs: the drain takes them too."""
    for i in range(n):
        work.enqueue(i)


def seed(url: str) -> dict[str, int]:
    """Enqueue the burst test's jobs into the store at `url`; their ids by name."""
    app.config = app.config.with_url_override(url)
    ids = {f"work-{i}": work.enqueue(i).id for i in range(5)}
    ids["flaky"] = flaky.enqueue("ada").id
    ids["slow_retry"] = slow_retry.enqueue().id
    ids["fan_out"] = fan_out.enqueue(3).id
    ids["later"] = work.options(delay=3600).enqueue(99).id
    app.close()
    return ids
