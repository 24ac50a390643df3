"""The application the acceptance tests drive through `offload enqueue` and `offload worker`.

Imported in subprocesses as `cliapp:app` (the tests put this folder on PYTHONPATH); its store
is always given with `--url`.
"""

from __future__ import annotations

from offload import Offload

app = Offload(lease_seconds=5.0, maintenance_interval=0.2)


@app.job()
def add(a: int, b: int) -> int:
    """Adds two numbers: a job with a result."""
    return a + b


@app.job(queue="emails")
def greet(name: str, punctuation: str = "!") -> str:
    """Greets someone: string arguments and a default."""
    return f"hello {name}{punctuation}"


@app.job(max_attempts=1)
def explode(reason: str = "boom") -> None:
    """Always fails, so it ends dead after its single attempt."""
    raise RuntimeError(reason)


@app.job(queue="bounded", max_backlog=1)
def bounded() -> None:
    """A job type whose backlog is bounded at one job: the next enqueue is refused."""
