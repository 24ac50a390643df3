"""The package stays lint-clean, formatted, mypy-strict clean and true to its layers: one command
checks it all."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "offload", "tests", "bench"],
        ["ruff", "format", "--check", "offload", "tests", "bench"],
        ["mypy"],
    ],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_tool_is_clean(command: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr


# import-linter with the contracts of pyproject.toml ([tool.importlinter]): the package's layers.
LINT_IMPORTS = (
    "import sys; from importlinter.cli import lint_imports_command; "
    "sys.exit(lint_imports_command())"
)


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """Check the package under `root` against the contracts of `root/pyproject.toml`; the
    package is read from `root`, never from wherever offload is installed."""
    return subprocess.run(
        [sys.executable, "-c", LINT_IMPORTS, "--no-cache", "--no-logo"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_layer_contracts_hold() -> None:
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        (
            "store/_codec.py",
            "from offload.worker._process import Worker",
            "offload.store is not allowed to import offload.worker",
        ),
        (
            "server/_stats.py",
            "from offload.worker._ack import acknowledge",
            "offload.server is not allowed to import offload.worker",
        ),
        (
            "_states.py",
            "from offload.jobs._type import JobType",
            "offload._states is not allowed to import offload.jobs",
        ),
        (
            "cli/_stats.py",
            "from offload.store.sqlite import SQLiteStore",
            "offload.cli is not allowed to import offload.store.sqlite",
        ),
    ],
    ids=[
        "store-imports-worker",
        "server-imports-worker",
        "ground-imports-jobs",
        "cli-imports-engine",
    ],
)
def test_an_import_against_the_layers_breaks_a_contract(
    tmp_path: Path, module: str, line: str, broken: str
) -> None:
    """The contracts are no formality: a copy of the package with one import against them
    fails the check, which names that import."""
    shutil.copytree(
        ROOT / "offload", tmp_path / "offload", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(tmp_path / "offload" / module, "a", encoding="utf-8") as file:
        file.write(f"\n{line}\n")
    done = lint_imports(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert broken in done.stdout, done.stdout


def layout_table_names(readme: str) -> set[str]:
    """The files and folders of `offload/` named in the first column of the README's layout
    table; a bare `_x.py` in a cell lies beside the path that starts the cell."""
    section = readme.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    named: set[str] = set()
    for row in section.splitlines():
        if not row.startswith("| `offload/"):
            continue
        folder = ""
        for path in re.findall(r"`([^`]+)`", row.split(" | ", 1)[0]):
            if path.startswith("offload/"):
                folder = "offload/"
                named.add(path.removeprefix("offload/").rstrip("/"))
            else:
                named.add((folder + path).removeprefix("offload/"))
    return named


def test_the_readme_layout_table_matches_the_tree() -> None:
    """Every module and package at the root of `offload/` has its row, and every row names
    something that is there (`__init__.py`, the public names, is told of in the text)."""
    tree = {
        entry.name
        for entry in (ROOT / "offload").iterdir()
        if (entry.suffix == ".py" and entry.name != "__init__.py")
        or (entry.is_dir() and (entry / "__init__.py").exists())
    }
    assert layout_table_names((ROOT / "README.md").read_text("utf-8")) == tree
