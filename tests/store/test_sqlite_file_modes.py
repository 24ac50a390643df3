"""A SQLite store's files are its owner's alone unless the URL says otherwise: the database,
its WAL and shared-memory files 0600, its wake folder 0700."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from offload import ConfigurationError, Offload


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize(
    ("given", "file_mode", "folder_mode"),
    [
        (None, 0o600, 0o700),
        ("0640", 0o640, 0o750),
    ],
)
def test_store_files_are_private(
    tmp_path: Path, given: str | None, file_mode: int, folder_mode: int
) -> None:
    old = os.umask(0o022)  # the usual umask, which would leave a file world-readable
    try:
        db = tmp_path / "jobs.db"
        url = f"sqlite:///{db}" + ("" if given is None else f"?file_mode={given}")
        app = Offload(url)

        @app.job()
        def noop() -> None:
            return None

        noop.enqueue()  # a write: the WAL and shared-memory files exist now
        listener = app.store.listener(["default"])  # a worker's wake-up: the wake folder
        try:
            for name in ("jobs.db", "jobs.db-wal", "jobs.db-shm"):
                assert _mode(tmp_path / name) == file_mode, name
            assert _mode(Path(f"{db}-wake")) == folder_mode
        finally:
            listener.close()
            app.close()
    finally:
        os.umask(old)


def test_an_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    db.touch(mode=0o644)
    os.chmod(db, 0o644)
    app = Offload(f"sqlite:///{db}")
    app.store.migrate()
    assert _mode(db) == 0o644
    app.close()


@pytest.mark.parametrize("bad", ["0400", "abc", "1777", "0o600", "77777"])
def test_bad_file_modes_are_refused(tmp_path: Path, bad: str) -> None:
    app = Offload(f"sqlite:///{tmp_path / 'jobs.db'}?file_mode={bad}")
    with pytest.raises(ConfigurationError, match="file_mode"):
        app.store.migrate()
