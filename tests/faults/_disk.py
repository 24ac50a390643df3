"""Small disks for the disk-full tests (catalogue C2): a tmpfs of a few megabytes, filled by a
file of the test's own, and a throwaway PostgreSQL cluster whose data lives on one.

Mounting needs root (as in CI); elsewhere these tests skip and say why. Every mount is
unmounted at the end, lazily, so that a process left holding a file cannot keep it mounted.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

FILLER = "filler"


@contextlib.contextmanager
def small_disk(folder: Path, size: str = "8m") -> Iterator[Path]:
    """`folder` as a fresh tmpfs of `size` (skip the test where mounting is not allowed)."""
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0777", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here ({done.stderr.strip()}); run as root")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def resize(folder: Path, size: str) -> None:
    """Give the tmpfs at `folder` a new size: space comes back without deleting anything."""
    subprocess.run(["mount", "-o", f"remount,size={size}", str(folder)], check=True)


def fill(folder: Path) -> int:
    """Write `folder/filler` until the disk is full; the bytes written."""
    written = 0
    fd = os.open(folder / FILLER, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        block = b"\0" * 4096
        while True:
            try:
                written += os.write(fd, block)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
    finally:
        os.close(fd)
    return written


def free(folder: Path) -> None:
    """Delete the filler: the disk has room again."""
    with contextlib.suppress(FileNotFoundError):
        (folder / FILLER).unlink()


def free_bytes(folder: Path) -> int:
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


# --- a throwaway PostgreSQL cluster whose data directory is a small tmpfs ---------------------
def _pg_bin() -> Path | None:
    root = Path("/usr/lib/postgresql")
    versions = sorted(root.glob("*/bin/initdb")) if root.exists() else []
    if versions:
        return versions[-1].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    """A PostgreSQL server of the test's own: `url` names its `postgres` database."""

    data: Path
    port: int
    bin: Path

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def ctl(self, *args: str) -> None:
        command = " ".join([str(self.bin / "pg_ctl"), "-D", str(self.data), *args])
        subprocess.run(["su", "postgres", "-c", command], check=True, capture_output=True)


@contextlib.contextmanager
def cluster_on_small_disk(size: str = "40m") -> Iterator[Cluster]:
    """A PostgreSQL cluster whose tables live on a tmpfs of `size` (its write-ahead log lives
    elsewhere, so that a full disk refuses writes instead of stopping the server). Its folder
    is outside pytest's (which only root may enter), since the server runs as `postgres`."""
    pg = _pg_bin()
    if pg is None or os.geteuid() != 0:
        pytest.skip("needs root and PostgreSQL's server binaries (initdb, pg_ctl)")
    base = Path(tempfile.mkdtemp(prefix="offload-pg-"))
    base.chmod(0o755)
    wal = base / "wal"
    wal.mkdir()
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, base, True)
        data = cleanup.enter_context(small_disk(base / "data", size))
        shutil.chown(base, "postgres")
        shutil.chown(wal, "postgres")
        shutil.chown(data, "postgres")
        subprocess.run(
            [
                "su",
                "postgres",
                "-c",
                f"{pg / 'initdb'} -D {data} --waldir={wal} -A trust -U postgres --no-sync",
            ],
            check=True,
            capture_output=True,
        )
        cluster = Cluster(data, _free_port(), pg)
        options = f"-p {cluster.port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
        cluster.ctl("-o", f"'{options}'", "-l", str(base / "log"), "-w", "start")
        try:
            yield cluster
        finally:
            with contextlib.suppress(subprocess.CalledProcessError):
                cluster.ctl("-m", "immediate", "-w", "stop")


def fill_postgres(url: str) -> None:
    """Grow a table in `url`'s database until the server reports its disk full."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS filler (pad text)")
        while True:
            try:
                conn.execute(
                    "INSERT INTO filler SELECT repeat('x', 2000) FROM generate_series(1, 500)"
                )
            except psycopg.errors.DiskFull:
                return
