"""A producer process for fault tests, enqueuing through the ledger until told to stop.

`python -m tests.faults.producer NAME [KIND]` enqueues KIND jobs (default `work`) of
`tests.faults.pgapp`, keyed `NAME-<i>`, one `enqueue` call each, recording `invoke` and then
`ok`, `info` (a StoreError: the outcome is unknown) or `fail` in the ledger, until the file
`stop` appears in `$OFFLOAD_TEST_DIR`. Any other error ends it with a traceback and a non-zero
exit, which the test sees.
"""

from __future__ import annotations

import sys
import time

from ._ledger import Ledger
from .faultapp import workdir
from .pgapp import make_app


def main(name: str, kind: str = "work") -> None:
    app = make_app()
    ledger = Ledger(workdir())
    stop = workdir() / "stop"
    i = 0
    while not stop.exists():
        if ledger.enqueue(app, kind, f"{name}-{i}") is None:
            time.sleep(0.05)  # the store failed: pause as a client would, not a hot loop
        i += 1
    app.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
