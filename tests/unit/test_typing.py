"""The job API is typed: a type checker accepts the right uses of a job type (its parameters,
its result) and refuses the wrong ones. mypy runs on two samples in tests/typing_samples: every
line of sample_bad.py marked `# E: ...` gets that error, and no other line gets one."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = Path("tests") / "typing_samples"


def _mypy(*files: Path) -> dict[tuple[str, int], list[str]]:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", *map(str, files)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert not done.stderr.strip(), done.stderr
    errors: dict[tuple[str, int], list[str]] = {}
    for line in done.stdout.splitlines():
        found = re.match(r"(.+?):(\d+): error: (.*)", line)
        if found:
            errors.setdefault((Path(found[1]).name, int(found[2])), []).append(found[3])
    return errors


def test_good_and_bad_uses_of_job_types_are_told_apart() -> None:
    errors = _mypy(SAMPLES / "sample_ok.py", SAMPLES / "sample_bad.py")
    ok = {where: e for where, e in errors.items() if where[0] == "sample_ok.py"}
    assert not ok, ok
    lines = (ROOT / SAMPLES / "sample_bad.py").read_text().splitlines()
    expected = {n: line.split("# E: ", 1)[1] for n, line in enumerate(lines, 1) if "# E: " in line}
    assert len(expected) >= 8
    bad = {n: e for (name, n), e in errors.items() if name == "sample_bad.py"}
    for n, wanted in expected.items():
        assert any(wanted in e for e in bad.get(n, [])), (n, lines[n - 1], bad.get(n))
    unexpected = {n: e for n, e in bad.items() if n not in expected}
    assert not unexpected, unexpected
