"""offload: the app the `offload worker` command loads (`--url` picks SQLite or PostgreSQL)."""

from __future__ import annotations

from bench._recorder import record
from offload import Offload

app = Offload("sqlite:///bench/.data/offload.db")


@app.job()
def noop(i: int, t: float | None = None) -> None:
    record(i, t)


@app.job()
def bare(i: int) -> None:
    """Records nothing: its runs are counted from completed rows (the ack)."""
