"""The fault app plus a job that reads back the durability settings of every connection its
worker's store opened (catalogue C3c). Workers import it as `tests.faults.sqliteapp:app`."""

from __future__ import annotations

import sqlite3

from offload import Offload
from offload.store.sqlite import SQLiteStore

from .faultapp import make_app as fault_app


def settings(store: SQLiteStore) -> list[list[object]]:
    """`[journal_mode, synchronous]` of each of the store's connections in this process."""
    connections: list[sqlite3.Connection] = list(store._all)
    return [
        [
            conn.execute("PRAGMA journal_mode").fetchone()[0],
            conn.execute("PRAGMA synchronous").fetchone()[0],
        ]
        for conn in connections
    ]


def make_app(url: str | None = None) -> Offload:
    app = fault_app(url)

    @app.job()
    def read_settings() -> list[list[object]]:
        store = app.store
        assert isinstance(store, SQLiteStore)
        return settings(store)

    return app


app = make_app()
