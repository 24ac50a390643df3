"""The fenced code blocks of a Markdown page, with the marks that say how each one runs.

A mark is an HTML comment on the line before a block (readers of the rendered page don't see
it); CONTRIBUTING.md documents them:

    <!-- docs-test: skip REASON -->    not meant to run (REASON says why)
    <!-- docs-test: background -->     a shell command that runs until the page ends (a worker)
    <!-- docs-test: pytest -->         a test module: run with pytest, its tests must pass
    <!-- docs-test: hidden             opens a comment whose blocks run but are not shown;
    docs-test: background              inside it, marks are written without <!-- -->
    -->                                closes it

A Python block whose first line is `# name.py` is that file's listing: it is written to the
page's folder, not executed, and later blocks import it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

PYTHON = frozenset({"python", "py", "python3"})
SHELL = frozenset({"sh", "bash", "shell", "console"})
JSON = frozenset({"json"})
TEXT = frozenset({"text", "txt", "plain"})
MODES = ("skip", "background", "pytest")

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_MARK = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<body>.*?)\s*(?P<close>-->)?\s*$")
_BARE_MARK = re.compile(r"^\s*docs-test:\s*(?P<body>.*?)\s*$")  # inside a hidden comment
_FILE = re.compile(r"^#\s*(?P<name>[\w./-]+\.py)\s*$")

HOW_TO_MARK = (
    "make it runnable, or mark it as not meant to run with an HTML comment on the line before "
    "its opening fence: <!-- docs-test: skip REASON --> (see CONTRIBUTING.md, 'Code blocks in "
    "the docs'; ```text is for output and diagrams)"
)


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: str  # the page's path, relative to the repository
    line: int  # the line of its opening fence, from 1
    language: str  # the first word of its info string, lower-case ("" when none)
    code: str  # its content, the fence's indentation removed
    mode: str = ""  # "", "skip", "background" or "pytest"
    reason: str = ""  # why a skipped block is not run
    hidden: bool = False  # inside a <!-- docs-test: hidden ... --> comment

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def filename(self) -> str | None:
        """The file a Python listing stands for (`# myapp.py` on its first line), if any."""
        if self.language not in PYTHON:
            return None
        first = self.code.split("\n", 1)[0]
        match = _FILE.match(first)
        return match.group("name") if match else None


class MarkError(ValueError):
    """A mark that the runner does not understand."""


def parse(text: str, page: str) -> list[Block]:
    """Every fenced block of `text`, in order, with its mark."""
    lines = text.splitlines()
    blocks: list[Block] = []
    hidden = False
    i = 0
    while i < len(lines):
        line = lines[i]
        mark = _MARK.match(line)
        if mark and not mark.group("close") and mark.group("body").split()[:1] == ["hidden"]:
            hidden = True
        elif hidden and line.strip() == "-->":
            hidden = False
        fence = _FENCE.match(line)
        if not fence:
            i += 1
            continue
        indent, marker = fence.group("indent"), fence.group("fence")
        info = fence.group("info").strip()
        end = i + 1
        while end < len(lines):
            closing = lines[end].strip()
            if closing.startswith(marker[0] * len(marker)) and not closing.strip(marker[0]):
                break
            end += 1
        body = [_dedent(x, len(indent)) for x in lines[i + 1 : end]]
        mode, reason = _mark_before(lines, i, page)
        language = info.split()[0].lower().lstrip("{.").rstrip("}") if info else ""
        blocks.append(Block(page, i + 1, language, "\n".join(body) + "\n", mode, reason, hidden))
        i = end + 1
    return blocks


def _dedent(line: str, width: int) -> str:
    prefix = len(line) - len(line.lstrip(" "))
    return line[min(prefix, width) :]


def _mark_before(lines: list[str], index: int, page: str) -> tuple[str, str]:
    """The mode and reason of the mark on the nearest non-blank line above a fence."""
    j = index - 1
    while j >= 0 and not lines[j].strip():
        j -= 1
    if j < 0:
        return "", ""
    mark = _MARK.match(lines[j])
    if mark and not mark.group("close"):
        return "", ""
    mark = mark or _BARE_MARK.match(lines[j])
    if not mark:
        return "", ""
    word, _, rest = mark.group("body").partition(" ")
    if word not in MODES:
        raise MarkError(
            f"{page}:{j + 1}: unknown mark <!-- docs-test: {mark.group('body')} -->; the marks "
            f"are {', '.join(MODES)} (and `hidden` to open a comment), see CONTRIBUTING.md"
        )
    if word == "skip" and not rest.strip():
        raise MarkError(
            f"{page}:{j + 1}: <!-- docs-test: skip --> needs a reason: "
            "<!-- docs-test: skip needs a PostgreSQL server at db.internal -->"
        )
    return word, rest.strip()


def pages(root: Path) -> list[Path]:
    """README.md and every Markdown page under docs/, whoever added it."""
    found = [root / "README.md", *sorted((root / "docs").rglob("*.md"))]
    return [p for p in found if p.is_file()]
