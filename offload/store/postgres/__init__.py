"""The PostgreSQL engine: one schema of a database, shared by workers on many machines."""

from offload.store.postgres._engine import PostgresStore

__all__ = ["PostgresStore"]
