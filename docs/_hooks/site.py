"""MkDocs hooks of the documentation site (mkdocs.yml names this file).

- Every page under docs/ is in the navigation: pages the nav does not name go under "More",
  so a page added by anyone is reachable at once and `mkdocs build --strict` stays green.
- A relative link from a page to a file outside docs/ (`../examples/node-worker/worker.mjs`),
  which works when reading the Markdown in the repository, becomes a link to that file in the
  repository on the site.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

_LINK = re.compile(r"\]\((?P<target>\.\./[^)\s#]+)(?P<anchor>#[^)\s]*)?\)")


def _named(nav: Any) -> set[str]:
    """Every page path a nav names."""
    if isinstance(nav, str):
        return {nav}
    if isinstance(nav, list):
        return set().union(*(_named(item) for item in nav)) if nav else set()
    if isinstance(nav, dict):
        return set().union(*(_named(value) for value in nav.values())) if nav else set()
    return set()


def on_config(config: Any) -> Any:
    nav = config.get("nav")
    if not nav:
        return config
    docs = Path(config["docs_dir"])
    named = _named(nav)
    rest = sorted(
        p.relative_to(docs).as_posix()
        for p in docs.rglob("*.md")
        if not any(part.startswith(("_", ".")) for part in p.relative_to(docs).parts)
    )
    more = [page for page in rest if page not in named]
    if more:
        config["nav"] = [*nav, {"More": more}]
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    repo = (config.get("repo_url") or "").rstrip("/")
    if not repo:
        return markdown
    docs = Path(config["docs_dir"]).resolve()
    root = docs.parent
    folder = posixpath.dirname(page.file.src_uri)

    def rewrite(match: re.Match[str]) -> str:
        target = posixpath.normpath(posixpath.join(folder, match.group("target")))
        path = (docs / target).resolve()
        if path.is_relative_to(docs) or not path.is_relative_to(root) or not path.exists():
            return match.group(0)
        kind = "tree" if path.is_dir() else "blob"
        anchor = match.group("anchor") or ""
        return f"]({repo}/{kind}/main/{path.relative_to(root).as_posix()}{anchor})"

    return _LINK.sub(rewrite, markdown)
