"""The SQLite engine's typed refusals, without root: a file held at its size limit by
`PRAGMA max_page_count` refuses to grow (SQLITE_FULL, as on a full disk) and a file whose
header is overwritten is not a database (SQLITE_NOTADB).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from offload import StoreCorruptError, StoreFullError
from offload.store import verify_store
from offload.store.sqlite import SQLiteStore

from ._helpers import claim, complete, new_job


def test_a_file_at_its_size_limit_refuses_inserts_whole_and_still_runs_its_jobs(
    sqlite_url: str,
) -> None:
    store = SQLiteStore(sqlite_url)
    store.migrate()
    try:
        store.job_insert_many([new_job(args={"n": i}) for i in range(20)])
        conn = store._conn()  # the connection this thread's operations use
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(StoreFullError) as refused:
            for _ in range(100):
                store.job_insert_many([new_job(args={"pad": "x" * 2000}) for _ in range(10)])
        assert "size limit (PRAGMA max_page_count)" in str(refused.value)
        assert "Nothing of this operation was stored" in str(refused.value)
        stored = sum(c.count for c in store.job_counts())
        assert stored % 10 == 0, "a refused batch left rows behind"

        # Jobs already stored still run: a claim and a completion change rows in place.
        for job in claim(store, limit=5):
            complete(store, job, result=None)

        conn.execute(f"PRAGMA max_page_count = {pages * 100}")  # room again
        store.job_insert_many([new_job(args={"after": True})])  # the same connection writes
        assert sum(c.count for c in store.job_counts()) == stored + 1
    finally:
        store.close()


def test_a_file_that_is_not_a_database_is_store_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    store = SQLiteStore(str(path))
    store.migrate()
    store.close()
    with open(path, "r+b") as f:
        f.write(b"definitely not!!")
    with pytest.raises(StoreCorruptError, match="not SQLite's"):
        verify_store(str(path))
    store = SQLiteStore(str(path))
    with pytest.raises(StoreCorruptError, match=f"the SQLite file {path} is damaged"):
        store.job_counts()
    store.close()
