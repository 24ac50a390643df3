"""Turn the figures of a fault run into the table of docs/reliability.md.

    OFFLOAD_FAULT_FIGURES=/tmp/figures.jsonl python3 -m pytest -m "slow or not slow" tests/faults
    python3 -m tests.faults.figures /tmp/figures.jsonl

Each test appends one JSON line per engine (see `_ledger.record_figures`); the last line of a
(test, engine) pair wins.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

COLUMNS = ("jobs", "lost", "duplicated", "restarted", "stuck")


def table(path: Path) -> str:
    rows: dict[tuple[str, str], dict[str, object]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            rows[(row["test"], row["engine"])] = row
    out = ["| test | engine | " + " | ".join(COLUMNS) + " |", "|---|---|" + "--:|" * len(COLUMNS)]
    for (test, engine), row in sorted(rows.items()):
        out.append(
            f"| {test} | {engine} | " + " | ".join(str(row.get(c, "")) for c in COLUMNS) + " |"
        )
    return "\n".join(out)


if __name__ == "__main__":
    print(table(Path(sys.argv[1])))
