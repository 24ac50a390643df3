"""Shared rendering for the commands: ISO times, job records as JSON, tables and live lines.

Humans get aligned tables and one status line refreshed in place on a terminal; scripts get
`--json`, whose shape is documented in docs/cli.md and kept stable.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import click

from offload._time import iso as iso_time
from offload.app._config import mask_url
from offload.jobs._secrets import shown_record
from offload.store._codec import latest_error
from offload.store._contract import JobRecord

_TIME_FIELDS = (
    "scheduled_at",
    "lease_expires_at",
    "inserted_at",
    "attempted_at",
    "finished_at",
    "expires_at",
    "deadline",
)
_STATE_COLORS = {
    "completed": "green",
    "running": "cyan",
    "available": "blue",
    "retryable": "yellow",
    "dead": "red",
    "cancelled": "magenta",
    "shed": "magenta",
}


def iso(ts: float | None, precision: str = "milliseconds") -> str | None:
    """Epoch seconds as ISO 8601 UTC with a `Z` (None stays None)."""
    if ts is None:
        return None
    return iso_time(ts, precision)


def safe_url(url: str) -> str:
    """A store URL fit to print: any password is masked."""
    return mask_url(url)


def job_dict(record: JobRecord, listed: bool = False, readable: bool = False) -> dict[str, Any]:
    """Every field of a job record, times as ISO UTC strings, ready for `json.dumps`. A stored
    field that cannot be decoded is null (the errors list empty) and named in `undecodable`
    with why and the start of its stored text. Secret arguments show as `***`, encrypted ones
    and an encrypted result as `<encrypted>` unless `readable` and this process has the key.
    `listed`: as a listing shows it, its errors reduced to the latest entry without its
    traceback."""
    record = shown_record(record, readable)
    out = dataclasses.asdict(record)
    for name in _TIME_FIELDS:
        out[name] = iso(out[name])
    errors = latest_error(record.errors) if listed else record.errors
    out["errors"] = [{**e, "at": _entry_time(e.get("at"))} for e in errors]
    for name in record.undecodable:
        if name in ("args", "meta", "result"):
            out[name] = None
    return out


def _entry_time(at: Any) -> Any:
    """An error entry's time as ISO, or as stored when it is not a time."""
    if isinstance(at, (int, float)) and not isinstance(at, bool):
        return iso(float(at))
    return at


def print_json(value: Any, *, compact: bool = False) -> None:
    """One JSON document on stdout (one line when `compact`, for JSON Lines streams)."""
    if compact:
        click.echo(json.dumps(value, separators=(",", ":"), ensure_ascii=False))
    else:
        click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def to_json_text(value: Any, limit: int | None = None) -> str:
    """Compact JSON for a table cell or a field, shortened to `limit` characters."""
    text = json.dumps(value, ensure_ascii=False)
    return shorten(text, limit) if limit else text


def shorten(text: str, limit: int) -> str:
    """`text` on one line, cut to `limit` characters with an ellipsis."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: max(limit - 1, 0)] + "…"


def state_label(state: str) -> str:
    """A state name, coloured on terminals (click strips colour elsewhere)."""
    return click.style(state, fg=_STATE_COLORS.get(state))


def last_error(record: JobRecord) -> str:
    """The message of a job's most recent failed attempt, or ''."""
    if "errors" in record.undecodable:
        return "(errors list cannot be decoded)"
    if not record.errors:
        return ""
    last = record.errors[-1]
    error = last.get("error")
    return error if isinstance(error, str) else json.dumps(last, ensure_ascii=False, default=str)


def is_tty(stream: TextIO) -> bool:
    """Whether a stream is an interactive terminal (live refresh, colour)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def terminal_width() -> int:
    """Columns of the terminal, or a generous default when output is not one."""
    return shutil.get_terminal_size((120, 24)).columns


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    numeric: Sequence[int] = (),
    indent: str = "",
    width: int | None = None,
) -> str:
    """Aligned columns with a header row; `numeric` columns are right-aligned.

    Widths are measured without ANSI colour so coloured cells line up too. With `width`, the
    last column (free text such as an error) is cut so that lines fit in that many columns.
    """
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    count = len(headers)
    widths = [max(len(click.unstyle(r[i])) for r in cells) for i in range(count)]
    if width is not None and count > 1:
        room = width - len(indent) - sum(widths[:-1]) - 2 * (count - 1)
        room = max(room, len(headers[-1]), 10)
        for row in cells[1:]:
            row[-1] = shorten(row[-1], room)
        widths[-1] = max(len(click.unstyle(r[-1])) for r in cells)
    lines = []
    for n, row in enumerate(cells):
        parts = []
        for i, cell in enumerate(row):
            pad = widths[i] - len(click.unstyle(cell))
            if i in numeric:
                parts.append(" " * pad + cell)
            else:
                parts.append(cell if i == count - 1 else cell + " " * pad)
        text = (indent + "  ".join(parts)).rstrip()
        lines.append(click.style(text, bold=True) if n == 0 else text)
    return "\n".join(lines)


class LiveLine:
    """A status line: rewritten in place on a terminal, printed line by line elsewhere.

    On a terminal every `update` redraws; elsewhere an update is printed only when `every`
    seconds have passed since the last printed one (logs get one line per second, not 40).
    """

    def __init__(self, stream: TextIO | None = None, every: float = 1.0) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.live = is_tty(self.stream)
        self.every = every
        self._last_printed: float | None = None
        self._last_text = ""
        self._dirty = False

    def update(self, text: str, now: float, *, force: bool = False) -> None:
        if self.live:
            width = terminal_width() - 1
            click.echo("\r\x1b[K" + shorten(text, width), file=self.stream, nl=False)
            self._dirty = True
            return
        if text == self._last_text:
            return
        if force or self._last_printed is None or now - self._last_printed >= self.every:
            click.echo(text, file=self.stream)
            self._last_printed = now
            self._last_text = text

    def finish(self) -> None:
        """End the live line so that what follows starts on a line of its own."""
        if self.live and self._dirty:
            click.echo("", file=self.stream)
            self._dirty = False

    def clear(self) -> None:
        """Erase the live line (before printing an error, say)."""
        if self.live and self._dirty:
            click.echo("\r\x1b[K", file=self.stream, nl=False)
            self._dirty = False
