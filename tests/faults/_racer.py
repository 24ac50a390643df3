"""A producer process of the unique-enqueue race (catalogue E5).

    python -m tests.faults._racer NAME ROUNDS

Opens the delivery app on `$OFFLOAD_URL`, says it is ready (`ready-NAME` in `$OFFLOAD_TEST_DIR`),
waits for the `go` file, then for each round enqueues key `strict-R` (a `work` job with
`unique_key`) and key `policy-R` (a `unique_work` job, unique by its key), each with its ledger
lines. Each call's outcome goes to `results-NAME` (`key id created|duplicate`), and anything
it raised to `errors-NAME`.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

from tests._wait import eventually

from ._ledger import Ledger
from .deliveryapp import make_app
from .faultapp import workdir


def main(name: str, rounds: int) -> None:
    folder = workdir()
    app = make_app()
    app.store  # open (and migrate) before the race starts
    ledger = Ledger(folder)
    results: list[str] = []
    errors: list[str] = []
    (folder / f"ready-{name}").touch()
    go = folder / "go"
    eventually(go.exists, timeout=120, interval=0.005, what="the start")
    for r in range(rounds):
        for key, kind, options in (
            (f"strict-{r}", "work", {"unique_key": f"strict-{r}"}),
            (f"policy-{r}", "unique_work", {}),
        ):
            ledger.note("invoke", key)
            try:
                job = app.call(kind, **options).enqueue(key=key)
            except Exception:
                ledger.note("info", key)
                errors.append(f"{key} {traceback.format_exc(limit=3)!r}")
                continue
            ledger.note("ok", key, job.id)
            results.append(f"{key} {job.id} {'duplicate' if job.duplicate else 'created'}")
    app.close()
    Path(folder / f"results-{name}").write_text("".join(f"{line}\n" for line in results))
    Path(folder / f"errors-{name}").write_text("".join(f"{line}\n" for line in errors))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
