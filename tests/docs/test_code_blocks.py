"""Every code block of README.md and of each page under docs/ runs as written, in CI.

One test per page (pages added later are picked up by themselves): its blocks run in order in
a temp folder of the page's own, so a block may build on the ones before it. A block that is
not meant to run carries a mark (tests/docs/_blocks.py, CONTRIBUTING.md); any other block
that cannot run fails with a message that says how to mark it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ._blocks import pages, parse
from ._runner import REPO, PageRun

PAGES = pages(REPO)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_code_blocks_run_as_written(page: Path, tmp_path: Path) -> None:
    blocks = parse(page.read_text(), str(page.relative_to(REPO)))
    run = PageRun(tmp_path)
    try:
        for block in blocks:
            run.run(block)
    finally:
        problems = run.close()
    assert not problems, "\n".join(problems)
