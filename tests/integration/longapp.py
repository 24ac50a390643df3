"""The long-jobs application the integration tests run in real `offload worker` processes
(`tests.integration.longapp:app`, its store from `$OFFLOAD_URL`).

`walk` and `walk_async` are iteration jobs over the rows of a real table: a SQLite file
`$OFFLOAD_TEST_DIR/rows.db` holding `items(id)`, read by keyset in pages. Each row processed is
appended to `$OFFLOAD_TEST_DIR/processed-<name>` (one `write` on an `O_APPEND` file) before the
job yields its id, so the test sees every row processed, and how many times, whatever killed
the worker. Pages are paced (a short sleep each) so that a test can interrupt a run midway.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import offload
from offload import Offload

LEASE_SECONDS = 1.0
CHECKPOINT_EVERY = 500  # yields: at most this many rows run again after a SIGKILL
PAGE = 100
PAUSE = 0.002  # seconds after each page


def folder() -> Path:
    return Path(os.environ["OFFLOAD_TEST_DIR"])


def make_rows(n: int) -> None:
    """The table the jobs walk: ids 1..n."""
    with sqlite3.connect(folder() / "rows.db") as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY)")
        conn.executemany("INSERT INTO items (id) VALUES (?)", ((i,) for i in range(1, n + 1)))


def processed(key: str) -> list[int]:
    try:
        return [int(x) for x in (folder() / f"processed-{key}").read_bytes().split()]
    except FileNotFoundError:
        return []


def _page(conn: sqlite3.Connection, after: int) -> list[int]:
    rows = conn.execute("SELECT id FROM items WHERE id > ? ORDER BY id LIMIT ?", (after, PAGE))
    return [r[0] for r in rows]


def _gate_open() -> float | bool:
    """throttle_on of `gated`: wait 0.2 s while the file `gate` exists."""
    return 0.2 if (folder() / "gate").exists() else False


def make_app(url: str | None = None) -> Offload:
    """The application with the long-job test types; `url=None` means `$OFFLOAD_URL`."""
    app = Offload(url, lease_seconds=LEASE_SECONDS, maintenance_interval=0.2, max_crashes=10)

    @app.job(checkpoint_every=CHECKPOINT_EVERY)
    def walk(key: str, cursor: int | None = None) -> Iterator[int]:
        conn = sqlite3.connect(folder() / "rows.db")
        fd = os.open(folder() / f"processed-{key}", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            after = cursor or 0
            while rows := _page(conn, after):
                for row in rows:
                    os.write(fd, b"%d\n" % row)
                    after = row
                    yield row
                time.sleep(PAUSE)
        finally:
            os.close(fd)
            conn.close()

    @app.job(checkpoint_every=CHECKPOINT_EVERY)
    async def walk_async(key: str, cursor: int | None = None) -> AsyncIterator[int]:
        conn = sqlite3.connect(folder() / "rows.db")
        fd = os.open(folder() / f"processed-{key}", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            after = cursor or 0
            while rows := _page(conn, after):
                for row in rows:
                    os.write(fd, b"%d\n" % row)
                    after = row
                    yield row
                await asyncio.sleep(PAUSE)
        finally:
            os.close(fd)
            conn.close()

    @app.job(checkpoint_every=0.05)
    def count_up(key: str, n: int, cursor: int | None = None) -> Iterator[int]:
        """Counts to n, a few milliseconds an item, reporting its total."""
        offload.current_job().progress(total=n)
        fd = os.open(folder() / f"processed-{key}", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            for i in range((cursor or 0) + 1, n + 1):
                os.write(fd, b"%d\n" % i)
                time.sleep(0.005)
                yield i
        finally:
            os.close(fd)

    @app.job(checkpoint_every=0.05)
    async def count_up_async(key: str, n: int, cursor: int | None = None) -> AsyncIterator[int]:
        fd = os.open(folder() / f"processed-{key}", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            for i in range((cursor or 0) + 1, n + 1):
                os.write(fd, b"%d\n" % i)
                await asyncio.sleep(0.005)
                yield i
        finally:
            os.close(fd)

    @app.job(checkpoint_every=1, throttle_on=_gate_open)
    def gated(key: str, n: int, cursor: int | None = None) -> Iterator[int]:
        """Counts to n, throttled while the file `gate` exists."""
        fd = os.open(folder() / f"processed-{key}", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            for i in range((cursor or 0) + 1, n + 1):
                os.write(fd, b"%d\n" % i)
                time.sleep(0.01)
                yield i
        finally:
            os.close(fd)

    @app.job()
    def snoozer(key: str) -> str:
        """Snoozes for 0.3 s on its first run, completes on the next."""
        marker = folder() / f"snoozed-{key}"
        if not marker.exists():
            marker.touch()
            offload.current_job().snooze(0.3)
        return "woke"

    return app


app = make_app()
