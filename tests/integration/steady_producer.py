"""A producer process that enqueues until told to stop, for fault tests.

`python -m tests.integration.steady_producer NAME` enqueues `record` jobs keyed `NAME-<i>`, one
`enqueue` call each, until the file `stop` appears in `$OFFLOAD_TEST_DIR`. Each outcome is
appended as it happens (one `write` on an `O_APPEND` file, so a test can read them while it
runs): `acked-NAME` gets "<key> <id>" per acknowledged enqueue, `errors-NAME` gets
"<key> <exception type>: <message>" per enqueue that raised (its outcome is unknown: the job may
or may not be stored). It exits 0.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.integration.jobsapp import make_app, workdir


def _append(path: Path, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line.replace("\n", " ") + "\n").encode())
    finally:
        os.close(fd)


def main(name: str) -> None:
    app = make_app()
    app.store.now()  # open the store before saying ready
    folder = workdir()
    (folder / f"ready-{name}").touch()
    stop = folder / "stop"
    acked, errors = folder / f"acked-{name}", folder / f"errors-{name}"
    i = 0
    while not stop.exists():
        key = f"{name}-{i}"
        i += 1
        try:
            job = app.enqueue("record", key=key)
        except Exception as exc:  # noqa: BLE001 - every failure is reported to the test
            _append(errors, f"{key} {type(exc).__module__}.{type(exc).__name__}: {exc}")
        else:
            _append(acked, f"{key} {job.id}")
    app.close()


if __name__ == "__main__":
    main(sys.argv[1])
