"""The job application of the bad-input fault tests (catalogue F3, F4, F6).

Workers import it as `tests.faults.inputapp:app`; its store URL comes from `$OFFLOAD_URL` and
its ledger folder from `$OFFLOAD_TEST_DIR`. `echo` records a start and an end for its `key`
and returns the value it was given, so that a test sees what a worker decoded; job types and
queues with hostile names (quotes, SQL, backslash, %, emoji) run like any other.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from offload import Offload

from ._ledger import note

LEASE_SECONDS = 2.0
MAINTENANCE_INTERVAL = 0.2
# Names that a careless store would paste into SQL, a LIKE pattern or a shell: each is a job
# type of its own, on a queue of the same odd name (a worker takes them all).
ODD_NAMES = (
    "'; DROP TABLE jobs; --",
    'say "hi"',
    "back\\slash",
    "100% done_",
    "🎉 party",
    "a" * 100,
)
ODD_QUEUES = ",".join(ODD_NAMES)


def workdir() -> Path:
    return Path(os.environ["OFFLOAD_TEST_DIR"])


def make_app(url: str | None = None) -> Offload:
    """Every bad-input job type; `url=None` means `$OFFLOAD_URL`."""
    app = Offload(url, lease_seconds=LEASE_SECONDS, maintenance_interval=MAINTENANCE_INTERVAL)

    @app.job(max_attempts=1)
    def echo(key: str, value: Any = None) -> Any:
        """Record a start and an end; return `value` as the worker received it."""
        note(workdir(), "start", key)
        note(workdir(), "end", key)
        return value

    for name in ODD_NAMES:

        def odd(key: str) -> str:
            note(workdir(), "start", key)
            note(workdir(), "end", key)
            return key

        app.job(odd, name=name, queue=name[:100], max_attempts=1)

    return app


app = make_app()
