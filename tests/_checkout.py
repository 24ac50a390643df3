"""A copy of this checkout's files, as a fresh clone would have them (no caches, venvs, builds)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP = {".git", ".venv", "build", "dist", "site", "node_modules", "__pycache__"}


def copy_checkout(target: Path) -> Path:
    """Copy the files git knows of (tracked or not ignored) to `target`; without git, the tree
    less what is generated."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True
    )
    if listed.returncode == 0:
        for name in filter(None, listed.stdout.decode().split("\0")):
            src = ROOT / name
            if src.is_file():
                dst = target / name
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
    else:
        shutil.copytree(
            ROOT,
            target,
            dirs_exist_ok=True,
            ignore=lambda _, names: [
                n for n in names if n in SKIP or n.endswith((".egg-info", "_cache"))
            ],
        )
    return target
