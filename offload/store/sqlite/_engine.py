"""SQLite engine of the store contract: one file in WAL mode, shared by many processes.

The engine is its connections and executors (`_base.py`) with one module per operation family
mixed in: jobs, dispatch, policy, pauses, maintenance, admin, totals and run time. A family reaches
another only through that family's module-level functions, which take the transaction's
connection.
"""

from __future__ import annotations

from offload.store.sqlite._admin import SQLiteAdmin
from offload.store.sqlite._base import SQLiteBase, sqlite_path
from offload.store.sqlite._bulk import SQLiteBulk
from offload.store.sqlite._dispatch import SQLiteDispatch
from offload.store.sqlite._events import SQLiteEvents
from offload.store.sqlite._jobs import SQLiteJobs
from offload.store.sqlite._maintenance import SQLiteMaintenance
from offload.store.sqlite._pauses import SQLitePauses
from offload.store.sqlite._policy import SQLitePolicy
from offload.store.sqlite._runtime import SQLiteRunTime
from offload.store.sqlite._sealed import SQLiteSealed
from offload.store.sqlite._totals import SQLiteTotals
from offload.store.sqlite._versions import SQLiteVersions
from offload.store.sqlite._workflows import SQLiteWorkflows


class SQLiteStore(
    SQLiteJobs,
    SQLiteDispatch,
    SQLitePolicy,
    SQLitePauses,
    SQLiteMaintenance,
    SQLiteAdmin,
    SQLiteBulk,
    SQLiteTotals,
    SQLiteRunTime,
    SQLiteEvents,
    SQLiteVersions,
    SQLiteWorkflows,
    SQLiteSealed,
    SQLiteBase,
):
    """The store on one SQLite file."""


__all__ = ["SQLiteStore", "sqlite_path"]
