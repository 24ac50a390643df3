"""offload: the app of bench/pickup.py, whose job returns the time its first line ran."""

from __future__ import annotations

import time

from offload import Offload

app = Offload("sqlite:///bench/.data/pickup.db")


@app.job()
def stamp(i: int) -> float:
    """When this run began, by this machine's clock (which the store's SQLite clock is)."""
    return time.time()
