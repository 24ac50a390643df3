"""A producer process for the fault tests: enqueues `work` jobs, each with its ledger lines.

`python -m tests.faults.count_producer NAME COUNT [SECONDS]` enqueues COUNT jobs keyed `NAME-<i>`
(SECONDS: how long each job runs), one `enqueue` each, into `$OFFLOAD_URL`. It writes
`ready-NAME` once its store is open and waits for the file `go`, so that producers start
together. A refusal the store types (`StoreBusyError`, `StoreFullError`: nothing was stored) is
a `fail` line and is counted in `refused-NAME`; any other exception ends the process with its
traceback, which the test reads as a failure.
"""

from __future__ import annotations

import sys

from offload import StoreBusyError, StoreFullError
from tests._wait import eventually

from ._ledger import Ledger
from .faultapp import make_app, workdir


def main(name: str, count: int, seconds: float) -> None:
    app = make_app()
    app.store.now()
    app.store.schema_version()  # open before the start line
    folder = workdir()
    ledger = Ledger(folder)
    (folder / f"ready-{name}").touch()
    eventually((folder / "go").exists, timeout=120, interval=0.005, what="the start")
    refused: list[str] = []
    for i in range(count):
        key = f"{name}-{i}"
        ledger.note("invoke", key)
        try:
            job = app.enqueue("work", key=key, seconds=seconds)
        except (StoreBusyError, StoreFullError) as exc:
            ledger.note("fail", key)
            refused.append(f"{key} {type(exc).__name__}: {exc}")
            continue
        ledger.note("ok", key, job.id)
    (folder / f"refused-{name}").write_text("".join(line + "\n" for line in refused))
    app.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 0.0)
