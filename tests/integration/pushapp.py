"""Jobs whose life is pushed to the caller (tests/integration/test_push.py): by Server-Sent
Events and by signed webhooks. Workers import it as `tests.integration.pushapp:app`; its store
URL comes from `$OFFLOAD_URL`, the URL a `told` job notifies from `$PUSH_NOTIFY`, and the
signing secrets from `$OFFLOAD_WEBHOOK_SECRETS`, as in production."""

from __future__ import annotations

import os
from pathlib import Path

import offload
from offload import Offload
from tests._wait import eventually

HOLD_LIMIT = 60.0


def make_app(url: str | None = None, notify: str | None = None) -> Offload:
    app = Offload(url, lease_seconds=5.0, maintenance_interval=0.2)
    app.webhooks.backoff = 0.2  # retried deliveries come back quickly in tests

    @app.job(max_attempts=1)
    def greet(name: str) -> str:
        return f"hello {name}"

    @app.job(max_attempts=2, backoff=0.1)
    def boom(message: str) -> None:
        raise RuntimeError(message)

    @app.job(max_attempts=1, notify=notify)
    def told(n: int) -> int:
        return n * 2

    @app.job(max_attempts=1)
    def steps(key: str) -> str:
        """Says it is half done, then waits for the test to release it."""
        offload.current_job().progress(1, 2)
        release = Path(os.environ["OFFLOAD_TEST_DIR"]) / f"release-{key}"
        eventually(release.exists, timeout=HOLD_LIMIT, interval=0.02, what=f"{key} released")
        return "done"

    return app


app = make_app(notify=os.environ.get("PUSH_NOTIFY"))
