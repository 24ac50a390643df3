"""The documentation site: it builds with `mkdocs build --strict`, its API reference covers the
public names, its options reference names every parameter the code accepts, and every page
under docs/ is in its navigation."""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import offload
from offload import Offload
from offload.jobs._type import _CALL_NAMES, _OPTION_NAMES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (
        "mkdocs build --strict failed (see CONTRIBUTING.md, 'Documentation'):\n"
        + done.stdout[-4000:]
        + done.stderr[-4000:]
    )
    return out


def test_the_api_reference_documents_every_public_name(site: Path) -> None:
    page = (site / "python-api" / "index.html").read_text()
    missing = [name for name in offload.__all__ if f'id="offload.{name}"' not in page]
    assert not missing, f"no entry in the Python API page for {missing}"
    # the docstrings are there, not just the names
    assert "A background-job application bound to one store." in page


def test_every_page_is_built_and_the_quickstart_comes_from_the_readme(site: Path) -> None:
    for page in (ROOT / "docs").rglob("*.md"):
        relative = page.relative_to(ROOT / "docs")
        if relative.parts[0].startswith("_"):
            continue
        built = site / relative.with_suffix("") / "index.html"
        if relative.name == "index.md":
            built = site / relative.parent / "index.html"
        assert built.exists(), f"{relative} was not built"
    quickstart = (site / "quickstart" / "index.html").read_text()
    assert "Put an application in a file" in quickstart and "venv" in quickstart


def _options_documented() -> str:
    return (ROOT / "docs" / "reference.md").read_text()


def test_the_options_page_names_every_parameter_of_offload() -> None:
    page = _options_documented()
    params = [p for p in inspect.signature(Offload.__init__).parameters if p != "self"]
    missing = [p for p in params if f"`{p}`" not in page]
    assert not missing, f"docs/reference.md does not describe Offload({', '.join(missing)})"


def test_the_options_page_names_every_option_of_app_job() -> None:
    page = _options_documented()
    explicit = [
        p for p in inspect.signature(Offload.job).parameters if p not in ("self", "options")
    ]
    names = sorted({*explicit, *_OPTION_NAMES, *_CALL_NAMES})
    missing = [p for p in names if f"`{p}`" not in page]
    assert not missing, f"docs/reference.md does not describe the job options {missing}"


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("site_hooks", ROOT / "docs/_hooks/site.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pages_missing_from_the_nav_are_added_under_more(tmp_path: Path) -> None:
    for name in ("index.md", "known.md", "new.md", "guides/later.md", "_hooks/x.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("# page\n")
    config: dict[str, Any] = {"docs_dir": str(tmp_path), "nav": ["index.md", {"K": "known.md"}]}
    nav = _hooks().on_config(config)["nav"]
    assert nav == ["index.md", {"K": "known.md"}, {"More": ["guides/later.md", "new.md"]}]


def test_links_outside_docs_point_to_the_repository() -> None:
    class File:
        src_uri = "guides/page.md"

    class Page:
        file = File()

    config = {"docs_dir": str(ROOT / "docs"), "repo_url": "https://example.org/repo"}
    markdown = "[worker](../../examples/node-worker/worker.mjs#L3) and [a page](../api.md)"
    out = _hooks().on_page_markdown(markdown, Page(), config, None)
    assert out == (
        "[worker](https://example.org/repo/blob/main/examples/node-worker/worker.mjs#L3) "
        "and [a page](../api.md)"
    )
    assert re.search(r"\]\(\.\./api\.md\)", out)
