"""A producer process of the backpressure test (catalogue H2).

    python -m tests.faults._pressure NAME COUNT

Enqueues COUNT jobs into the bounded queue of `pressureapp` as fast as it can, each with its
ledger lines; a refusal (`OverloadedError`) is the ledger's `fail`, and the producer goes on
with its next job. Writes how many were refused to `refused-NAME` and anything else it raised
to `errors-NAME`; closing the app flushes its refusals to the store's `refused` counter.
"""

from __future__ import annotations

import sys
import traceback

from offload import OverloadedError

from ._ledger import Ledger
from .faultapp import workdir
from .pressureapp import make_app


def main(name: str, count: int) -> None:
    folder = workdir()
    app = make_app()
    # Depths read every 0.1 s instead of every second, so that a short test sees the bound
    # hold within what the leader's recount (every maintenance interval) allows.
    app.admission.backlog_refresh = 0.1
    ledger = Ledger(folder)
    refused = 0
    errors = []
    for i in range(count):
        try:
            ledger.enqueue(app, "work", f"{name}-{i}")
        except OverloadedError as exc:
            assert exc.retry_after > 0
            refused += 1
        except Exception:
            errors.append(traceback.format_exc(limit=3))
    app.close()
    (folder / f"refused-{name}").write_text(str(refused))
    (folder / f"errors-{name}").write_text("".join(errors))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
