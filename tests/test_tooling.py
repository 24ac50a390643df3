"""The package stays lint-clean, formatted, mypy-strict clean and true to its layers: one command
checks it all."""

from __future__ import annotations

import os
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
