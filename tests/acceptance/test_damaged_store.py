"""Commands on a damaged SQLite file: one line naming the file and the damage, exit 3.

Every command that opens a store first runs a bounded `PRAGMA quick_check` of the file; the
URL option `integrity_check=off` skips it for a file too large to check at each start.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ._helpers import APP, CLI, Result, Seeded, copy_store


def damaged(seeded: tuple[str, Seeded], tmp_path: Path, table: str) -> Path:
    """A copy of the seeded store whose `table` has its root page's header inverted."""
    url, _ = seeded
    path = tmp_path / "damaged.db"
    copy_store(Path(url.removeprefix("sqlite:///")), path)
    with sqlite3.connect(path) as conn:
        (root,) = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)
        ).fetchone()
        (size,) = conn.execute("PRAGMA page_size").fetchone()
    conn.close()
    with open(path, "r+b") as f:
        f.seek((root - 1) * size)
        head = f.read(16)
        f.seek((root - 1) * size)
        f.write(bytes(b ^ 0xFF for b in head))
    return path


def assert_damaged(result: Result, path: Path) -> None:
    assert "Traceback" not in result.err, result
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result
    assert f"the SQLite file {path} is damaged" in lines[0]
    assert "restore it from a backup" in lines[0]


def test_commands_on_a_damaged_file_exit_3_with_one_line(
    cli: CLI, seeded: tuple[str, Seeded], tmp_path: Path
) -> None:
    path = damaged(seeded, tmp_path, "offload_jobs")
    url = f"sqlite:///{path}"
    for command in (
        ("jobs", "list"),
        ("jobs", "show", "1"),
        ("stats",),
        ("rules", "list"),
        ("migrate",),
        ("enqueue", APP, "add", "a=1", "b=2"),
    ):
        assert_damaged(cli(*command, "--url", url, code=3), path)


def test_integrity_check_off_skips_the_check(
    cli: CLI, seeded: tuple[str, Seeded], tmp_path: Path
) -> None:
    # Damage in a table that listing jobs never reads: only the check can see it.
    path = damaged(seeded, tmp_path, "offload_workers")
    assert_damaged(cli("jobs", "list", "--url", f"sqlite:///{path}", code=3), path)
    listed = cli("jobs", "list", "--json", "--url", f"sqlite:///{path}?integrity_check=off")
    assert len(listed.json()) == 5


def test_an_unknown_integrity_check_value_is_a_usage_error(cli: CLI, fresh_url: str) -> None:
    result = cli("jobs", "list", "--url", f"{fresh_url}?integrity_check=sometimes", code=2)
    assert "integrity_check='sometimes'" in result.err and "quick, off" in result.err
