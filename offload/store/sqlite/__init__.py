"""The SQLite engine: one file in WAL mode, shared by many processes on one machine."""

from offload.store.sqlite._engine import SQLiteStore

__all__ = ["SQLiteStore"]
