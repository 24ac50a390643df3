"""The package as people get it: one version, the sdist and wheel that `python -m build` makes
(checked with `twine check --strict`), their metadata and files, the licence and changelog.

Building needs setuptools from the package index (build isolation), as CI has.
"""

from __future__ import annotations

import email
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

import offload
from tests._checkout import copy_checkout

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_one_version_source() -> None:
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    attr = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "offload.__version__"
    done = subprocess.run(
        [sys.executable, "-m", "offload", "--version"], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == f"offload, version {offload.__version__}"


def test_changelog_has_a_section_for_this_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "keepachangelog.com" in changelog
    assert f"## [{offload.__version__}]" in changelog


def test_the_license_is_apache_2() -> None:
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert not any(c.startswith("License ::") for c in PYPROJECT["project"]["classifiers"])


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The sdist and the wheel built from it, as `python -m build` makes them."""
    source = copy_checkout(tmp_path_factory.mktemp("source"))
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


def test_twine_check_passes(dists: tuple[Path, Path]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, dists)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_wheel_metadata_and_files(dists: tuple[Path, Path]) -> None:
    _, wheel = dists
    version = offload.__version__
    assert wheel.name == f"offload-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        meta = email.message_from_bytes(zf.read(f"offload-{version}.dist-info/METADATA"))
    assert meta["Version"] == version
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert f"offload-{version}.dist-info/licenses/LICENSE" in names
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert {"Homepage", "Documentation", "Repository", "Issues", "Changelog"} <= set(urls)
    assert "Typing :: Typed" in meta.get_all("Classifier")
    assert meta["Requires-Python"] == ">=3.11"
    # what the package reads at run time: its SQL, migrations, templates, static files
    for needed in (
        "offload/py.typed",
        "offload/store/sqlite/queries.sql",
        "offload/store/sqlite/migrations/0001_jobs.sql",
        "offload/store/postgres/queries.sql",
        "offload/store/postgres/migrations/0001_jobs.sql",
        "offload/server/templates/base.html",
        "offload/server/static/offload.css",
    ):
        assert needed in names, needed
    assert not any(n.startswith(("tests/", "bench/", "docs/")) for n in names)


def test_sdist_holds_the_sources_and_licence(dists: tuple[Path, Path]) -> None:
    sdist, _ = dists
    prefix = f"offload-{offload.__version__}/"
    with tarfile.open(sdist) as tf:
        names = set(tf.getnames())
    for needed in ("LICENSE", "README.md", "pyproject.toml", "offload/__init__.py"):
        assert prefix + needed in names, needed
