"""What the SQLite fault tests do to a store's files: damage them (catalogue C4) and copy them
while they are being written (C5), and the checks run on what is left."""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import struct
from pathlib import Path

HEADER = 100  # bytes of the file header on page 1


def settle(path: Path) -> None:
    """Copy every committed page from the write-ahead log into the file and empty the log, so
    that the file alone holds the store (no process may have it open)."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def page_size(path: Path) -> int:
    with open(path, "rb") as f:
        header = f.read(HEADER)
    (size,) = struct.unpack_from(">H", header, 16)
    return 65536 if size == 1 else size


def flip_bytes(path: Path, seed: int, count: int = 16) -> int:
    """Invert `count` random bytes of a random page numbered 2 or more; the page's number."""
    rng = random.Random(seed)
    size = page_size(path)
    pages = os.path.getsize(path) // size
    page = rng.randrange(2, pages + 1)  # pages count from 1
    with open(path, "r+b") as f:
        for offset in rng.sample(range(size), count):
            f.seek((page - 1) * size + offset)
            byte = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([byte[0] ^ 0xFF]))
    return page


def flip_page_start(path: Path, page: int, count: int = 16) -> None:
    """Invert the first `count` bytes of `page`: its b-tree header, so that any read of the
    page finds it malformed."""
    size = page_size(path)
    with open(path, "r+b") as f:
        f.seek((page - 1) * size)
        data = f.read(count)
        f.seek((page - 1) * size)
        f.write(bytes(b ^ 0xFF for b in data))


def truncate_one_page(path: Path) -> None:
    os.truncate(path, os.path.getsize(path) - page_size(path))


def damage_header(path: Path) -> None:
    with open(path, "r+b") as f:
        f.write(b"this is no table")  # where "SQLite format 3\0" was


def root_page(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    conn.close()
    return int(row[0])


def quick_check(path: Path) -> list[str]:
    """What `PRAGMA quick_check` says of a file (a copy is checked: the file is left as is);
    an empty list when it found nothing wrong."""
    scratch = Path(f"{path}.check")
    shutil.copy(path, scratch)
    try:
        conn = sqlite3.connect(scratch)
        try:
            rows = conn.execute("PRAGMA quick_check").fetchall()
        except sqlite3.DatabaseError as exc:
            return [str(exc)]
        finally:
            conn.close()
        return [] if rows == [("ok",)] else [str(r[0]) for r in rows]
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{scratch}{suffix}").unlink(missing_ok=True)


def integrity_check(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def wal_salt(path: Path) -> bytes | None:
    """The salts of the write-ahead log's header, which change whenever the log starts over."""
    try:
        with open(f"{path}-wal", "rb") as f:
            header = f.read(32)
    except FileNotFoundError:
        return None
    return header[16:24] if len(header) == 32 else None


def snapshot(path: Path, into: Path) -> bool:
    """Copy the file, then its write-ahead log, while writers go on: what a power loss at the
    end of the copy would leave if every write made so far had reached the disk. True when the
    copy holds one moment: the log did not start over from the first copy to the last (it only
    grew, so it holds every page that the file's copy may lack); else it is useless: try again."""
    before = wal_salt(path)
    shutil.copyfile(path, into)
    try:
        shutil.copyfile(f"{path}-wal", f"{into}-wal")
    except FileNotFoundError:
        return False
    return before is not None and before == wal_salt(into) == wal_salt(path)
