"""An enumerator over the rows of a CSV file that resumes by seeking to a byte offset, so a
resumed run never reads the rows it has done (and a field may hold quoted newlines)."""

from __future__ import annotations

import codecs
import csv
import os
from collections.abc import Iterator
from contextlib import ExitStack
from typing import IO, Any

from offload.iteration._cursor import CursorError, describe, expect_int

_NAME = "over_csv"


def over_csv(
    source: str | os.PathLike[str] | IO[bytes],
    *,
    cursor: int | None = None,
    encoding: str = "utf-8",
    **fmtparams: Any,
) -> Iterator[tuple[dict[str, str], int]]:
    """The rows of a CSV file with a header line, as `(row, offset)` pairs: `row` maps the
    header's names to the row's fields, and `offset` is the byte offset just after the row,
    where a run resumes by seeking. `source` is a path or a binary file that can seek.
    `fmtparams` go to `csv.reader` (`delimiter`, `quotechar`...). Blank lines are skipped; a
    row with more or fewer fields than the header is an error naming its offset. Lines end
    with `\\n` or `\\r\\n`. The file may grow between runs but must not otherwise change. The
    arguments are checked at once; the cursor when the first row is asked for.
    """
    encoder = codecs.getincrementalencoder(encoding)()
    encoder.encode("a")  # past any byte order mark
    if encoder.encode("\n") != b"\n":
        raise ValueError(
            f"{_NAME}: encoding {encoding!r} does not write a newline as one byte; use an "
            "ASCII-compatible encoding such as utf-8"
        )
    if not isinstance(source, str | os.PathLike) and not (
        hasattr(source, "seek") and hasattr(source, "readline")
    ):
        raise TypeError(f"{_NAME}: source must be a path or a binary file, not {describe(source)}")
    csv.reader([], **fmtparams)  # refuses unknown or wrong options now
    return _open_rows(source, cursor, encoding, fmtparams)


def _open_rows(
    source: str | os.PathLike[str] | IO[bytes],
    cursor: int | None,
    encoding: str,
    fmtparams: dict[str, Any],
) -> Iterator[tuple[dict[str, str], int]]:
    with ExitStack() as stack:
        if isinstance(source, str | os.PathLike):
            file: IO[bytes] = stack.enter_context(open(source, "rb"))  # noqa: SIM115
        else:
            file = source
        yield from _rows(file, cursor, encoding, fmtparams)


def _rows(
    file: IO[bytes], cursor: int | None, encoding: str, fmtparams: dict[str, Any]
) -> Iterator[tuple[dict[str, str], int]]:
    file.seek(0)
    reader = _Reader(file, encoding, fmtparams)
    header = reader.next_record()
    if header is None:
        if cursor not in (None, 0):
            raise CursorError(f"{_NAME}: the cursor {cursor!r} points into an empty file")
        return
    body = reader.offset
    if cursor is not None:
        start = expect_int(_NAME, cursor, "an int (a byte offset just after a row)")
        size = file.seek(0, os.SEEK_END)
        if not body <= start <= size:
            raise CursorError(
                f"{_NAME}: the cursor {start} is outside the file's rows (bytes {body} to "
                f"{size}); was the file changed between runs?"
            )
        file.seek(start - 1)
        if start < size and file.read(1) != b"\n":
            raise CursorError(
                f"{_NAME}: the cursor {start} is not just after a line end, so not an offset "
                "this enumerator gave; was the file changed between runs?"
            )
        reader = _Reader(file, encoding, fmtparams, at=start)
    while (record := reader.next_record()) is not None:
        if not record:
            continue  # a blank line
        if len(record) != len(header):
            raise ValueError(
                f"{_NAME}: the row ending at byte {reader.offset} has {len(record)} fields, "
                f"the header has {len(header)}"
            )
        yield dict(zip(header, record, strict=True)), reader.offset


class _Reader:
    """csv.reader fed one line at a time from a binary file, so the byte offset after each
    record is known: the reader asks for exactly the lines a record spans, no more."""

    def __init__(
        self, file: IO[bytes], encoding: str, fmtparams: dict[str, Any], at: int = 0
    ) -> None:
        file.seek(at)
        self.offset = at
        self._file = file
        self._decoder = codecs.getincrementaldecoder(encoding)()
        self._csv = csv.reader(self._lines(), **fmtparams)

    def _lines(self) -> Iterator[str]:
        while line := self._file.readline():
            self.offset += len(line)
            yield self._decoder.decode(line)

    def next_record(self) -> list[str] | None:
        """The next record, or None at the end of the file."""
        return next(self._csv, None)
