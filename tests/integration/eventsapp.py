"""The events application the integration tests run in real `offload worker` processes
(`tests.integration.eventsapp:app`, store from `$OFFLOAD_URL`).

A topic `orders` of 4 partitions; two subscriptions (`send-receipt`, `index-order`) and two
consumer groups: `analytics` notes each batch and event in the ledger (jobsapp's format), and
`billing` is transactional: it writes one row per event to `billing_effects` in the store's own
database and commits its offset in that same transaction. With `$EVENTS_HOLD=1` in a worker's
environment, that worker's first `analytics` batch waits (for a SIGKILL) after noting `held`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from typing import Any

from offload import Batch, Event, Offload
from tests.integration.jobsapp import LEASE_SECONDS, MAINTENANCE_INTERVAL, note, workdir

_held = threading.Lock()


def make_app(url: str | None = None) -> Offload:
    app = Offload(url, lease_seconds=LEASE_SECONDS, maintenance_interval=MAINTENANCE_INTERVAL)
    app.topic("orders", partitions=4)

    @app.subscribe("orders", name="send-receipt", max_attempts=3)
    def send_receipt(event: Event) -> None:
        note("send-receipt", f"{event.partition}:{event.offset}")

    @app.subscribe("orders", name="index-order", max_attempts=3)
    async def index_order(event: Event) -> None:
        note("index-order", f"{event.partition}:{event.offset}")

    @app.consumer("orders", group="analytics", batch=50, idle=0.2, poll=0.2)
    def analytics(events: Batch) -> None:
        note("analytics-batch", f"{events.partition}:{events[0].offset}:{events[-1].offset}")
        if os.environ.get("EVENTS_HOLD") == "1" and _held.acquire(blocking=False):
            note("held", f"{events.partition}:{events[0].offset}:{events[-1].offset}")
            threading.Event().wait(120)  # until the test kills this worker
        for e in events:
            note("analytics", f"{e.partition}:{e.offset}")

    @app.consumer("orders", group="billing", batch=50, idle=0.2, poll=0.2)
    def billing(events: Batch) -> None:
        with effects_connection(app) as conn:
            conn.cursor().executemany(
                insert_sql(app), [(e.partition, e.offset, os.getpid()) for e in events]
            )
            events.commit(conn)

    return app


def effects_table(app: Offload) -> str:
    schema = getattr(app.store, "schema", None)
    return "billing_effects" if schema is None else f'"{schema}".billing_effects'


def insert_sql(app: Offload) -> str:
    mark = "?" if app.store.engine == "sqlite" else "%s"
    return f"INSERT INTO {effects_table(app)} (part, position, pid) VALUES ({mark}, {mark}, {mark})"


class effects_connection:  # noqa: N801 - used as a context manager, like a function
    """A connection of the application's own to the store's database, one transaction:
    committed when the block ends, rolled back when it raises."""

    def __init__(self, app: Offload) -> None:
        self.app = app
        self.conn: Any = None

    def __enter__(self) -> Any:
        store: Any = self.app.store
        if store.engine == "sqlite":
            self.conn = sqlite3.connect(store.path, isolation_level=None, timeout=30)
            self.conn.execute("BEGIN IMMEDIATE")
        else:
            import psycopg

            self.conn = psycopg.connect(store.conninfo)
        return self.conn

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        try:
            if kind is None:
                self.conn.commit() if self.app.store.engine != "sqlite" else self.conn.execute(
                    "COMMIT"
                )
            elif self.app.store.engine == "sqlite":
                self.conn.execute("ROLLBACK")
            else:
                self.conn.rollback()
        finally:
            self.conn.close()


def create_effects_table(app: Offload) -> None:
    with effects_connection(app) as conn:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {effects_table(app)} "
            "(part INTEGER NOT NULL, position INTEGER NOT NULL, pid INTEGER NOT NULL)"
        )


def effects(app: Offload) -> list[tuple[int, int]]:
    with effects_connection(app) as conn:
        rows = conn.execute(f"SELECT part, position FROM {effects_table(app)}").fetchall()
    return [(int(r[0]), int(r[1])) for r in rows]


__all__ = ["app", "make_app", "workdir"]

app = make_app()
