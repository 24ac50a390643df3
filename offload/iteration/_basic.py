"""Enumerators over values in memory: integer ranges, sequences, and batches of any of them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from offload.iteration._cursor import CursorError, describe, expect_int

T = TypeVar("T")


def over_range(
    start: int, stop: int, step: int = 1, *, cursor: int | None = None
) -> Iterator[tuple[int, int]]:
    """The integers of `range(start, stop, step)` as `(n, n)` pairs: the cursor is the last
    number done, and a run resumes at the next one after it. A cursor past `stop` yields
    nothing (the range may have been shortened); one before `start` or off the step is refused.

    >>> list(over_range(0, 10, 3, cursor=3))
    [(6, 6), (9, 9)]
    """
    for label, value in (("start", start), ("stop", stop), ("step", step)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"over_range: {label} must be an int, not {describe(value)}")
    if step == 0:
        raise ValueError("over_range: step must not be zero")
    first = start
    if cursor is not None:
        done = expect_int("over_range", cursor, "an int (the last number done) or None")
        if (done - start) * step < 0:
            raise CursorError(
                f"over_range: the cursor {done} lies before the range's start {start}"
            )
        if (done - start) % step:
            raise CursorError(
                f"over_range: the cursor {done} is not a number of the range "
                f"{start}..{stop} by {step}"
            )
        first = done + step
    return ((n, n) for n in range(first, stop, step))


def over_sequence(items: Sequence[T], *, cursor: int | None = None) -> Iterator[tuple[T, int]]:
    """The items of a sequence (a list, tuple, string...) as `(item, index)` pairs: the cursor
    is the index of the last item done, and a run resumes at the index after it. The sequence
    must hold the same items, in the same order, on every run.

    >>> list(over_sequence(["a", "b", "c"], cursor=0))
    [('b', 1), ('c', 2)]
    """
    if not isinstance(items, Sequence):
        raise TypeError(
            f"over_sequence: items must be a sequence (list, tuple...), not {describe(items)}"
        )
    first = 0
    if cursor is not None:
        done = expect_int("over_sequence", cursor, "an int (the index of the last item done)")
        if not 0 <= done < len(items):
            raise CursorError(
                f"over_sequence: the cursor {done} is not an index of this sequence of "
                f"{len(items)} items (was the sequence changed between runs?)"
            )
        first = done + 1
    return ((items[index], index) for index in range(first, len(items)))


def in_batches(pairs: Iterable[tuple[T, Any]], size: int) -> Iterator[tuple[list[T], Any]]:
    """Groups the `(item, cursor)` pairs of another enumerator into `(items, cursor)` pairs of
    at most `size` items, the cursor being that of the batch's last item. To resume, hand the
    batch cursor to the inner enumerator: it is one of its own.

    >>> list(in_batches(over_range(0, 5), 2))
    [([0, 1], 1), ([2, 3], 3), ([4], 4)]
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"in_batches: size must be a positive int, not {describe(size)}")
    return _batches(pairs, size)


def _batches(pairs: Iterable[tuple[T, Any]], size: int) -> Iterator[tuple[list[T], Any]]:
    batch: list[T] = []
    last: Any = None
    for item, position in pairs:
        batch.append(item)
        last = position
        if len(batch) == size:
            yield batch, last
            batch = []
    if batch:
        yield batch, last
