"""The in-memory enumerators and the CSV one: stopping after any k items and resuming from the
cursor of the k-th yields exactly the rest, and a cursor that does not fit is refused with an
error naming the enumerator."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offload.iteration import (
    CursorError,
    in_batches,
    over_csv,
    over_range,
    over_sequence,
)

Enumerate = Callable[[Any], Iterator[tuple[Any, Any]]]


def check_resume(enumerate_from: Enumerate, k: int) -> None:
    """Stop after k items, store the cursor as JSON (as the worker does), resume from it: the
    rest is exactly what the full run yields after those k items."""
    full = list(enumerate_from(None))
    k = min(k, len(full))
    cursor = None if k == 0 else json.loads(json.dumps(full[k - 1][1]))
    assert list(enumerate_from(cursor)) == full[k:]


ints = st.integers(min_value=-50, max_value=50)


@given(start=ints, stop=ints, step=ints.filter(bool), k=st.integers(0, 120))
def test_over_range_resumes_after_every_cursor(start: int, stop: int, step: int, k: int) -> None:
    full = list(over_range(start, stop, step))
    assert [n for n, _ in full] == list(range(start, stop, step))
    check_resume(lambda c: over_range(start, stop, step, cursor=c), k)


@given(items=st.lists(st.text(max_size=3), max_size=30), k=st.integers(0, 31))
def test_over_sequence_resumes_after_every_cursor(items: list[str], k: int) -> None:
    assert [item for item, _ in over_sequence(items)] == items
    check_resume(lambda c: over_sequence(items, cursor=c), k)


@given(
    n=st.integers(0, 40),
    size=st.integers(1, 7),
    k=st.integers(0, 41),
    inner=st.sampled_from(["range", "sequence"]),
)
def test_batches_resume_through_the_inner_enumerator(n: int, size: int, k: int, inner: str) -> None:
    items = [f"item{i}" for i in range(n)]

    def batches(cursor: Any) -> Iterator[tuple[list[Any], Any]]:
        if inner == "range":
            return in_batches(over_range(0, n, cursor=cursor), size)
        return in_batches(over_sequence(items, cursor=cursor), size)

    full = list(batches(None))
    assert all(len(batch) == size for batch, _ in full[:-1])
    assert len([x for batch, _ in full for x in batch]) == n
    check_resume(batches, k)


def test_a_batch_cursor_is_its_last_items_cursor() -> None:
    assert list(in_batches(over_sequence("abcde"), 2)) == [
        (["a", "b"], 1),
        (["c", "d"], 3),
        (["e"], 4),
    ]


def write_csv(
    header: list[str],
    rows: list[list[str]],
    line_end: str = "\r\n",
    quoting: int = csv.QUOTE_MINIMAL,
) -> bytes:
    """CSV as csv.writer writes it (which quotes a field holding \\r only when the line end
    holds one too: "\\n" line ends go with quoting every field)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator=line_end, quoting=quoting)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


field = st.text(
    alphabet=st.sampled_from(list('ab,"\n\r é€ '))
    | st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
    max_size=6,
)


@settings(max_examples=150)
@given(
    rows=st.lists(st.lists(field, min_size=3, max_size=3), max_size=12),
    style=st.sampled_from(
        [("\r\n", csv.QUOTE_MINIMAL), ("\r\n", csv.QUOTE_ALL), ("\n", csv.QUOTE_ALL)]
    ),
    k=st.integers(0, 13),
)
def test_over_csv_resumes_after_every_row(
    rows: list[list[str]], style: tuple[str, int], k: int
) -> None:
    header = ["id", "name", "note"]
    data = write_csv(header, rows, *style)
    full = list(over_csv(io.BytesIO(data)))
    assert [row for row, _ in full] == [dict(zip(header, r, strict=True)) for r in rows]
    if full:
        assert full[-1][1] == len(data)
    check_resume(lambda c: over_csv(io.BytesIO(data), cursor=c), k)


def test_over_csv_reads_quoted_newlines_and_resumes_mid_file_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes(
        write_csv(
            ["name", "address"],
            [
                ["Ann", "1 Main St\nSpringfield"],
                ["Bob", 'the "old" mill\r\nLower Road'],
                ["Cy", "x"],
            ],
        )
    )
    full = list(over_csv(path))
    assert full[1][0] == {"name": "Bob", "address": 'the "old" mill\r\nLower Road'}
    assert [row["name"] for row, _ in over_csv(str(path), cursor=full[0][1])] == ["Bob", "Cy"]
    assert list(over_csv(path, cursor=full[-1][1])) == []


def test_over_csv_options_blank_lines_and_a_last_row_without_newline() -> None:
    data = b"a;b\n1;2\n\n3;4"
    full = list(over_csv(io.BytesIO(data), delimiter=";"))
    assert full == [({"a": "1", "b": "2"}, 8), ({"a": "3", "b": "4"}, len(data))]
    assert list(over_csv(io.BytesIO(data), cursor=8, delimiter=";")) == full[1:]


def test_over_csv_skips_a_byte_order_mark_with_utf_8_sig() -> None:
    data = "\ufeffa,b\n1,2\n3,4\n".encode()  # the mark is 3 bytes
    full = list(over_csv(io.BytesIO(data), encoding="utf-8-sig"))
    assert full == [({"a": "1", "b": "2"}, 11), ({"a": "3", "b": "4"}, 15)]
    assert list(over_csv(io.BytesIO(data), cursor=11, encoding="utf-8-sig")) == full[1:]


def test_over_csv_refuses_a_ragged_row() -> None:
    with pytest.raises(ValueError, match="2 fields, the header has 3"):
        list(over_csv(io.BytesIO(b"a,b,c\n1,2\n")))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: over_range(0, 10, cursor="3"), "over_range: the cursor must be an int"),
        (lambda: over_range(0, 10, cursor=True), "over_range: the cursor must be an int"),
        (lambda: over_range(0, 10, 2, cursor=3), "over_range: the cursor 3 is not a number"),
        (lambda: over_range(5, 10, cursor=2), "over_range: the cursor 2 lies before"),
        (lambda: over_range(10, 0, -1, cursor=11), "over_range: the cursor 11 lies before"),
        (lambda: over_sequence("abc", cursor=[1]), "over_sequence: the cursor must be an int"),
        (lambda: over_sequence("abc", cursor=3), "over_sequence: the cursor 3 is not an index"),
        (lambda: over_sequence("abc", cursor=-1), "over_sequence: the cursor -1 is not an index"),
        (lambda: list(over_csv(io.BytesIO(b"a\n1\n"), cursor="2")), "over_csv: the cursor must"),
        (lambda: list(over_csv(io.BytesIO(b"a\n1\n"), cursor=1)), "over_csv: the cursor 1 is out"),
        (lambda: list(over_csv(io.BytesIO(b"a\n12\n"), cursor=3)), "over_csv: the cursor 3 is not"),
        (
            lambda: list(over_csv(io.BytesIO(b"a\n12\n"), cursor=99)),
            "over_csv: the cursor 99 is out",
        ),
    ],
)
def test_a_cursor_that_does_not_fit_is_refused_naming_the_enumerator(
    make: Callable[[], Any], match: str
) -> None:
    with pytest.raises(CursorError, match=match):
        make()


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="step must not be zero"):
        over_range(0, 10, 0)
    with pytest.raises(TypeError, match="over_range: stop must be an int"):
        over_range(0, 10.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="in_batches: size must be a positive int"):
        in_batches(over_range(0, 3), 0)
    with pytest.raises(TypeError, match="over_sequence: items must be a sequence"):
        over_sequence({1, 2})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="encoding 'utf-16'"):
        list(over_csv(io.BytesIO(b""), encoding="utf-16"))


def test_import_offload_does_not_import_the_enumerators_until_used() -> None:
    code = (
        "import sys, offload\n"
        "print('offload.iteration' in sys.modules)\n"
        "print(list(offload.iteration.over_range(0, 2)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["False", "[(0, 0), (1, 1)]"]
