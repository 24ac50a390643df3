"""offload: the app the `offload worker` command loads (`--url` picks SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

from bench import _io
from bench._recorder import record
from offload import Offload

app = Offload("sqlite:///bench/.data/offload.db")


@app.job()
def noop(i: int, t: float | None = None) -> None:
    record(i, t)


@app.job()
def io(i: int, t: float | None = None) -> None:
    _io.job(i, t)


@app.job()
def bare(i: int) -> None:
    """Records nothing: its runs are counted from completed rows (the ack)."""


@app.job()
def items(n: int) -> None:
    """A plain loop over n items that do nothing: what `iterate` is set against."""
    for _ in range(n):
        pass


def _iteration_jobs() -> None:
    """The iteration jobs, on checkouts that have them: `--offload-ref` may name a commit from
    before iteration jobs, whose other scenarios must still run."""

    @app.job()
    def iterate(n: int, cursor: int | None = None) -> Iterator[int]:
        """An iteration job over n items that do nothing; the cursor stored every 5 s."""
        for i in range(-1 if cursor is None else cursor, n - 1):
            yield i + 1

    @app.job(checkpoint_every=1)
    def iterate_each(n: int, cursor: int | None = None) -> Iterator[int]:
        """The same with the cursor stored after every item."""
        for i in range(-1 if cursor is None else cursor, n - 1):
            yield i + 1


try:
    _iteration_jobs()
except Exception as exc:  # noqa: BLE001 - an older offload refuses the option by its own error
    if "checkpoint_every" not in str(exc):
        raise
