"""Enumerators for iteration jobs: each takes a `cursor` (None: from the start) and yields
`(item, next_cursor)` pairs, resuming strictly after the cursor. A cursor is a plain JSON value
(an int, a string, a list) that the worker stores between runs.

    @app.job()
    def backfill(cursor=None):
        for n, position in offload.iteration.over_range(0, 1000, cursor=cursor):
            ...
            yield position

`import offload` does not import this package; `import offload.iteration` does.
"""

from offload.iteration._basic import in_batches, over_range, over_sequence
from offload.iteration._csv import over_csv
from offload.iteration._cursor import CursorError
from offload.iteration._rows import over_rows, over_rows_async

__all__ = [
    "CursorError",
    "in_batches",
    "over_csv",
    "over_range",
    "over_rows",
    "over_rows_async",
    "over_sequence",
]
