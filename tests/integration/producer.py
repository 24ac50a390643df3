"""A producer process for the concurrent-enqueue test.

`python -m tests.integration.producer NAME COUNT` enqueues COUNT `record` jobs keyed
`NAME-<i>`, one `enqueue` call each. It writes `ready-NAME` once its store is open, waits for the
file `go` so that every producer starts at once, then writes `acked-NAME` ("<key> <id>" per
acknowledged enqueue) and `errors-NAME` (one line per enqueue that raised), and exits 0.
"""

from __future__ import annotations

import sys

from tests._wait import eventually
from tests.integration.jobsapp import make_app, workdir


def main(name: str, count: int) -> None:
    app = make_app()
    app.store.now()  # open (and migrate) before the start line
    folder = workdir()
    (folder / f"ready-{name}").touch()
    go = folder / "go"
    eventually(go.exists, timeout=120, interval=0.005, what="the start")
    acked: list[str] = []
    errors: list[str] = []
    for i in range(count):
        key = f"{name}-{i}"
        try:
            job = app.enqueue("record", key=key)
        except Exception as exc:  # noqa: BLE001 - every failure is reported to the test
            errors.append(f"{key} {type(exc).__name__}: {exc}".replace("\n", " "))
        else:
            acked.append(f"{key} {job.id}")
    (folder / f"errors-{name}").write_text("".join(e + "\n" for e in errors))
    (folder / f"acked-{name}").write_text("".join(a + "\n" for a in acked))
    app.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
