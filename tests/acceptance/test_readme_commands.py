"""The README's first two commands, as a newcomer runs them on a fresh machine.

The first (install into `.venv`, then the demo) runs verbatim in a fresh copy of the checkout;
the second (the test suite) is what CI runs: `.ci/run` ends with it, character for character.
On a Debian or Ubuntu system Python, where pip refuses to install outside a virtual
environment, the first command works too: that test needs such a Python with python3-venv and
runs when `OFFLOAD_TEST_SYSTEM_PYTHON=1` (it takes as long as the first, for the same command).
"""

from __future__ import annotations

import glob
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests._checkout import ROOT, copy_checkout


def readme_commands() -> list[str]:
    """The shell commands of the README's "Try it" section, in order."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Try it", 1)[1].split("\n## ", 1)[0]
    return [c.strip() for c in re.findall(r"```sh\n(.*?)```", section, re.DOTALL)]


def test_the_readme_shows_two_one_line_commands() -> None:
    first, second = readme_commands()
    assert "\n" not in first and "\n" not in second
    assert first.endswith("offload demo") and "venv" in first
    assert second.endswith("-m pytest")


def test_ci_runs_the_readme_test_command_exactly() -> None:
    _, test_command = readme_commands()
    script = (ROOT / ".ci" / "run").read_text()
    commands = [x for x in script.splitlines() if x.strip() and not x.lstrip().startswith("#")]
    assert commands[-1] == test_command, (
        f".ci/run must end with the README's test command, character for character:\n"
        f"  README:  {test_command}\n  .ci/run: {commands[-1]}"
    )


def run_first_command(folder: Path, path_prefix: str = "") -> subprocess.CompletedProcess[str]:
    first, _ = readme_commands()
    env = {k: v for k, v in os.environ.items() if k not in ("OFFLOAD_URL", "VIRTUAL_ENV")}
    env.pop("PYTHONPATH", None)  # a newcomer's shell has none: the venv's offload must be used
    if path_prefix:
        env["PATH"] = f"{path_prefix}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        ["bash", "-c", first],
        cwd=folder,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


def check_demo_ran(done: subprocess.CompletedProcess[str], folder: Path) -> None:
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Summary (" in done.stdout and "dead          1" in done.stdout, done.stdout
    version = subprocess.run(
        [str(folder / ".venv" / "bin" / "offload"), "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout.startswith("offload, version")
    assert (folder / "offload-demo.db").exists()


def test_the_first_command_installs_and_runs_the_demo_in_a_fresh_checkout(
    tmp_path: Path,
) -> None:
    folder = copy_checkout(tmp_path / "checkout")
    check_demo_ran(run_first_command(folder), folder)


def _debian_python() -> Path | None:
    """/usr/bin/python3 when it is an externally managed (Debian or Ubuntu) Python >= 3.11 with
    its venv package (python3-venv) installed."""
    python = Path("/usr/bin/python3")
    if not python.exists() or not glob.glob("/usr/lib/python3*/EXTERNALLY-MANAGED"):
        return None
    check = "import ensurepip, sys, venv; print(sys.version_info >= (3, 11))"
    version = subprocess.run([str(python), "-c", check], capture_output=True, text=True)
    return python if version.stdout.strip() == "True" else None


@pytest.mark.slow
def test_the_first_command_works_with_debians_system_python(tmp_path: Path) -> None:
    if os.environ.get("OFFLOAD_TEST_SYSTEM_PYTHON") != "1":
        pytest.skip("set OFFLOAD_TEST_SYSTEM_PYTHON=1 to run the README's command with it")
    python = _debian_python()
    if python is None:
        pytest.skip("no externally managed Python >= 3.11 with python3-venv at /usr/bin/python3")
    shims = tmp_path / "bin"
    shims.mkdir()
    (shims / "python3").symlink_to(python)
    folder = copy_checkout(tmp_path / "checkout")
    refused = subprocess.run(
        [str(python), "-m", "pip", "install", "-e", "."],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0 and "externally-managed-environment" in refused.stderr
    check_demo_ran(run_first_command(folder, str(shims)), folder)
