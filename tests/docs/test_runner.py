"""The docs runner itself: how it reads marks, finds pages, and says how to mark a block."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._blocks import MarkError, pages, parse
from ._runner import BlockFailed, PageRun, transcript

PAGE = """\
# A page

```python
# shop.py
TOTAL = 2
```

<!-- docs-test: hidden -- setup readers don't need to see
```python
from shop import TOTAL
```
docs-test: skip marks inside a hidden comment have no comment delimiters
```sh
false
```
-->

```python
assert TOTAL == 2
seen = TOTAL + 1
```

<!-- docs-test: skip needs a server at db.internal -->
```sh
offload migrate --url postgresql://db.internal/x
```

```python
assert seen == 3
```

```text
output, never run
```
"""


def run_page(text: str, folder: Path) -> list[str]:
    run = PageRun(folder)
    try:
        for block in parse(text, "page.md"):
            run.run(block)
    finally:
        problems = run.close()
    return problems


def test_blocks_build_on_earlier_ones_and_marks_are_read(tmp_path: Path) -> None:
    blocks = parse(PAGE, "page.md")
    assert [(b.line, b.language, b.mode) for b in blocks] == [
        (3, "python", ""),
        (9, "python", ""),
        (13, "sh", "skip"),
        (18, "python", ""),
        (24, "sh", "skip"),
        (28, "python", ""),
        (32, "text", ""),
    ]
    assert blocks[0].filename == "shop.py" and blocks[1].hidden and not blocks[3].hidden
    assert blocks[2].hidden and blocks[4].reason == "needs a server at db.internal"
    assert run_page(PAGE, tmp_path) == []
    assert (tmp_path / "shop.py").read_text() == "# shop.py\nTOTAL = 2\n"


@pytest.mark.parametrize(
    ("block", "why"),
    [
        ("```\nsome output\n```\n", "has no language"),
        ("```toml\n[x]\n```\n", "cannot run ```toml blocks"),
        ("```python\nundefined_name\n```\n", "NameError: name 'undefined_name'"),
        ("```python\nawait something()\n```\n", "'await' outside function"),
        ("```sh\nfalse\n```\n", "exited with 1"),
        ("```json\n{'single': quotes}\n```\n", "is not JSON"),
    ],
)
def test_a_block_that_cannot_run_says_how_to_mark_it(block: str, why: str, tmp_path: Path) -> None:
    with pytest.raises(BlockFailed) as failed:
        run_page("# page\n\n" + block, tmp_path)
    message = str(failed.value)
    assert message.startswith("page.md:3: this ```")
    assert why in message
    assert "<!-- docs-test: skip REASON -->" in message and "CONTRIBUTING.md" in message


def test_marks_are_checked() -> None:
    with pytest.raises(MarkError, match="unknown mark"):
        parse("<!-- docs-test: skipp it -->\n```sh\ntrue\n```\n", "page.md")
    with pytest.raises(MarkError, match="needs a reason"):
        parse("<!-- docs-test: skip -->\n```sh\ntrue\n```\n", "page.md")


def test_the_runner_installs_nothing(tmp_path: Path) -> None:
    with pytest.raises(BlockFailed, match="exited with 97"):
        run_page("```sh\npython3 -m pip install somepackage\n```\n", tmp_path)


def test_transcripts_run_their_commands_and_expect_errors_shown(tmp_path: Path) -> None:
    code = "$ echo hi\nhi\n$ false\nError: it fails\n$ echo $?\n1\n"
    assert transcript(code) == [("echo hi", False), ("false", True), ("echo $?", False)]
    assert run_page(f"```console\n{code}```\n", tmp_path) == []
    with pytest.raises(BlockFailed, match="command 1 should have failed"):
        run_page("```console\n$ true\nError: shown failing\n```\n", tmp_path)


def test_background_commands_stop_with_the_page(tmp_path: Path) -> None:
    page = "<!-- docs-test: background -->\n```sh\nsleep 600\n```\n"
    assert run_page(page, tmp_path) == []
    early = "<!-- docs-test: background -->\n```sh\nexit 3\n```\n```sh\nsleep 0.5\n```\n"
    (problem,) = run_page(early, tmp_path)
    assert "exited early with 3" in problem


def test_every_page_under_docs_is_picked_up(tmp_path: Path) -> None:
    (tmp_path / "docs" / "guides").mkdir(parents=True)
    for name in ("README.md", "docs/a.md", "docs/guides/b.md", "docs/notes.txt"):
        (tmp_path / name).write_text("# x\n")
    found = [str(p.relative_to(tmp_path)) for p in pages(tmp_path)]
    assert found == ["README.md", "docs/a.md", "docs/guides/b.md"]
