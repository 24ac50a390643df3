"""`offload jobs show` shows a long job's progress, estimated finish, cursor and stop request."""

from __future__ import annotations

from offload.store import open_store
from offload.store._contract import Checkpoint, ClaimParams, NewJob

from ._helpers import CLI


def test_show_prints_progress_and_cursor(cli: CLI, fresh_url: str) -> None:
    store = open_store(fresh_url)
    try:
        store.migrate()
        [inserted] = store.job_insert_many([NewJob("backfill", "default", {})])
        [job] = store.job_claim(ClaimParams(["default"], 1, "w", 600))
        store.job_checkpoint_many([Checkpoint(job.id, job.lease_token, {"after": 40}, 40, 160, 9)])
        store.job_request_stop(job.id, "cancel")
    finally:
        store.close()
    out = cli("jobs", "show", str(inserted.id), "--url", fresh_url).out
    assert "40 of 160 (25.0%), estimated finish" in out
    assert '{"after":40}' in out.replace(" ", "")
    assert "cancel requested: it stops at its next yield" in out
