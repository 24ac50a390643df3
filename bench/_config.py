"""Where every system under test keeps its jobs: loopback services only, dedicated databases."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
DATA = BENCH / ".data"
RESULTS = BENCH / "results"
# Where drivers and workers import code from: the work tree, or a snapshot of a commit made by
# `python -m bench run --offload-ref REF` (offload/ from REF, bench/ linked to this one).
CODE = Path(os.environ.get("BENCH_CODE_ROOT", str(ROOT)))

HOST = "127.0.0.1"
# Redis: peers keep their queues in db 13, the run recorder uses db 14, and the `io` scenario's
# job bodies make their round trip to db 12; nothing else is touched.
REDIS_PEERS = f"redis://{HOST}:6379/13"
REDIS_RECORDER = f"redis://{HOST}:6379/14"
REDIS_IO = f"redis://{HOST}:6379/12"
PG_ADMIN = f"postgresql://postgres@{HOST}:5432/postgres"


def pg_url(database: str) -> str:
    """A database of the bench's own on the local server (dropped and made again per run)."""
    return f"postgresql://postgres@{HOST}:5432/{database}"


def sqlite_file(name: str) -> Path:
    DATA.mkdir(parents=True, exist_ok=True)
    return DATA / f"{name}.db"


# oban (the PyPI package) needs Python >= 3.12; it runs from a venv of its own.
OBAN_PYTHON = os.environ.get(
    "BENCH_OBAN_PYTHON", str(Path.home() / ".cache/offload-bench/venv-oban/bin/python")
)
