"""What SQLite's failures mean: a damaged file or a full disk, as offload's typed errors; and the
bounded integrity check that a worker or the command line runs before it uses a file.

A damaged file (SQLITE_CORRUPT, SQLITE_NOTADB) is `StoreCorruptError`: no retry or restart can
fix it. A full disk is `StoreFullError`: SQLITE_FULL, or an I/O error while the disk holding the
file has (almost) no space left, which is how a full disk shows when SQLite cannot even create
the shared-memory file it needs to open a WAL database.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import struct
import time

from offload._errors import StoreCorruptError, StoreError, StoreFullError

log = logging.getLogger("offload.store")

SQLITE_INTERRUPT = 9
SQLITE_IOERR = 10
SQLITE_CORRUPT = 11
SQLITE_FULL = 13
SQLITE_CANTOPEN = 14
SQLITE_NOTADB = 26
LOW_SPACE = 1 << 20  # bytes free below which an I/O error is taken for a full disk
CHECK_MODES = ("quick", "off")
CHECK_SECONDS = 10.0  # the startup check stops here on a huge file (it has found nothing yet)
_PROBLEMS_SHOWN = 3


def _code(exc: BaseException) -> int | None:
    """SQLite's primary result code of a driver error (the extended code's low byte)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


def free_bytes(path: str) -> int:
    """Bytes an unprivileged process may still write on the disk holding `path`."""
    try:
        st = os.statvfs(os.path.dirname(os.path.abspath(path)))
    except OSError:
        return LOW_SPACE  # unknown: don't call it full
    return st.f_bavail * st.f_frsize


def corrupt(path: str, problem: str) -> StoreCorruptError:
    problem = " ".join(problem.split())  # one line, whatever SQLite's report held
    return StoreCorruptError(
        f"the SQLite file {path} is damaged ({problem}); a restart cannot fix it: stop every "
        "process using it, then restore it from a backup or move it aside (see docs/sqlite.md)"
    )


def full(path: str, free: int) -> StoreFullError:
    if free >= LOW_SPACE:  # SQLITE_FULL with room on the disk: the file's own size limit
        where = "it reached its size limit (PRAGMA max_page_count)"
    else:
        where = f"the disk holding it is full ({free} bytes free)"
    return StoreFullError(
        f"the SQLite file {path} cannot be written: {where}. Nothing of this operation was "
        "stored; free space and try again (workers wait and resume by themselves)"
    )


def header_problem(path: str) -> str | None:
    """What the file's 100-byte header says is wrong with it, if anything: not a SQLite file,
    or shorter than the pages it claims (truncated)."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            header = f.read(100)
    except OSError:
        return None
    if size == 0:
        return None
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        return "its header is not SQLite's"
    (page_size,) = struct.unpack_from(">H", header, 16)
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return f"its header gives an impossible page size ({page_size})"
    (changes, pages) = struct.unpack_from(">II", header, 24)
    (valid_for,) = struct.unpack_from(">I", header, 92)
    if changes == valid_for and size < pages * page_size:  # the page count is current
        return f"truncated: {size} bytes, where its header counts {pages * page_size}"
    return None


def translate(exc: sqlite3.Error, path: str) -> StoreError | None:
    """The typed error for a failure of the file or its disk; None for any other failure."""
    code = _code(exc)
    if code in (SQLITE_CORRUPT, SQLITE_NOTADB):
        found = header_problem(path)
        return corrupt(path, str(exc) if found is None else f"{exc}: {found}")
    if code == SQLITE_FULL:
        return full(path, free_bytes(path))
    if code in (SQLITE_IOERR, SQLITE_CANTOPEN):
        free = free_bytes(path)
        if free < LOW_SPACE:
            return full(path, free)
    return None


def lost_wal_pages(path: str) -> int:
    """Pages committed to the write-ahead log but not yet copied into the file, when the log
    (`<file>-wal`) is gone while its index (`<file>-shm`) remains: what deleting the log after
    a crash threw away. 0 when the log is there, or nothing was waiting in it."""
    if os.path.exists(path + "-wal"):
        return 0
    try:
        with open(path + "-shm", "rb") as shm:
            header = shm.read(136)
    except OSError:
        return 0
    if len(header) < 136 or not header[12]:  # too short, or the index was never initialised
        return 0
    # The index header: mxFrame (last valid frame) at byte 16; the checkpoint's nBackfill
    # (frames already copied into the file) at byte 96; both in this machine's byte order.
    (max_frame,) = struct.unpack_from("=I", header, 16)
    (backfilled,) = struct.unpack_from("=I", header, 96)
    return max(int(max_frame) - int(backfilled), 0)


def quick_check(conn: sqlite3.Connection, path: str, seconds: float = CHECK_SECONDS) -> bool:
    """`PRAGMA quick_check` of the file, stopped after `seconds` on a huge one. Raises
    `StoreCorruptError` naming the first problems; False when it was stopped before the end."""
    deadline = time.monotonic() + seconds
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    try:
        rows = conn.execute(f"PRAGMA quick_check({_PROBLEMS_SHOWN})").fetchall()
    except sqlite3.OperationalError as exc:
        if _code(exc) != SQLITE_INTERRUPT:
            raise
        log.warning(
            "the integrity check of %s stopped after %.0fs without finding damage (the file is "
            "large); add ?integrity_check=off to its URL to skip it",
            path,
            seconds,
        )
        return False
    finally:
        conn.set_progress_handler(None, 0)
    problems = [str(row[0]).replace("*** in database main ***", "").strip() for row in rows]
    problems = [p for p in problems if p and p != "ok"]
    if problems:
        shown = "; ".join(problems[:_PROBLEMS_SHOWN])
        raise corrupt(path, f"quick_check: {shown}")
    return True
