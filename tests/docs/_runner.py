"""Runs one page's code blocks in order, in a temp folder of its own, as a reader would.

- Python blocks run in one namespace per page (tests/docs/_pydriver.py, a process of its own);
  a block whose first line is `# name.py` is written to that file instead.
- Shell blocks run with bash in the page's folder, where `offload` is this checkout's command
  and `$OFFLOAD_URL` is unset, so the default store is the folder's `./offload.db`. In a block
  written as a transcript (`$ command` lines followed by their output) only the commands run.
  `background` blocks (workers, relays) keep running until the page ends.
- JSON blocks must parse (one document, or one per line).
- `pytest` blocks are test modules: written to the folder and run with pytest.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import IO

from ._blocks import HOW_TO_MARK, JSON, PYTHON, SHELL, TEXT, Block

REPO = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).resolve().parent / "_pydriver.py"
BLOCK_TIMEOUT = 90.0


class BlockFailed(AssertionError):
    """A block did not run as written."""


class PageRun:
    """The folder, processes and logs of one page's run."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.bin = folder / ".bin"
        self.bin.mkdir(exist_ok=True)
        # `offload` and `python3` are this checkout's; nothing a page says installs packages.
        no_pip = 'echo "the docs runner installs nothing: mark this block skip" >&2; exit 97'
        shims = {
            "offload": f'exec "{sys.executable}" -m offload "$@"',
            "pip": no_pip,
            "pip3": no_pip,
            "python3": f'[ "$1 $2" = "-m pip" ] && {{ {no_pip}; }}; exec "{sys.executable}" "$@"',
        }
        shims["python"] = shims["python3"]
        for name, body in shims.items():
            shim = self.bin / name
            shim.write_text(f"#!/bin/sh\n{body}\n")
            shim.chmod(0o755)
        env = {k: v for k, v in os.environ.items() if k != "OFFLOAD_URL"}
        path = env.get("PYTHONPATH")
        env["PYTHONPATH"] = f"{REPO}{os.pathsep}{path}" if path else str(REPO)
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONUNBUFFERED"] = "1"
        env["COLUMNS"] = "120"
        self.env = env
        self.background: list[tuple[Block, subprocess.Popen[bytes], Path]] = []
        self.python: subprocess.Popen[str] | None = None
        self.reply: IO[str] | None = None
        self.python_log = folder / ".python.log"

    # --- one block ------------------------------------------------------------------
    def run(self, block: Block) -> None:
        if block.mode == "skip":
            return
        lang = block.language
        if block.mode == "pytest":
            if lang not in PYTHON:
                self.fail(block, "only a ```python block can be marked pytest")
            self.run_pytest(block)
        elif lang in PYTHON:
            if block.filename:
                target = self.folder / block.filename
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(block.code)
            else:
                self.run_python(block)
        elif lang in SHELL:
            if block.mode == "background":
                self.start_background(block)
            else:
                self.run_shell(block)
        elif lang in JSON:
            self.check_json(block)
        elif lang in TEXT:
            return
        elif not lang:
            self.fail(block, "it has no language after its opening fence, so it cannot run")
        else:
            self.fail(block, f"the docs runner cannot run ```{lang} blocks")

    def fail(self, block: Block, why: str, details: str = "") -> None:
        message = f"{block.where}: this ```{block.language} block {why}.\n"
        if details:
            message += textwrap.indent(details.rstrip(), "    ") + "\n"
        message += self.background_tails()
        message += f"If the block is not meant to run as written: {HOW_TO_MARK}."
        raise BlockFailed(message)

    # --- Python ---------------------------------------------------------------------
    def run_python(self, block: Block) -> None:
        if self.python is None:
            read_fd, write_fd = os.pipe()
            log = self.python_log.open("w")
            self.python = subprocess.Popen(
                [sys.executable, str(DRIVER)],
                cwd=self.folder,
                env={**self.env, "DOCS_TEST_REPLY_FD": str(write_fd)},
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                pass_fds=[write_fd],
            )
            log.close()
            os.close(write_fd)
            self.reply = os.fdopen(read_fd, "r")
        assert self.python.stdin is not None and self.reply is not None
        self.python.stdin.write(json.dumps({"where": block.where, "code": block.code}) + "\n")
        self.python.stdin.flush()
        ready, _, _ = select.select([self.reply], [], [], BLOCK_TIMEOUT)
        if not ready:
            self.fail(block, f"did not finish within {BLOCK_TIMEOUT:g}s", self.log_tail())
        line = self.reply.readline()
        if not line:
            self.fail(block, "ended the Python process", self.log_tail())
        answer = json.loads(line)
        if not answer["ok"]:
            self.fail(block, "failed", answer["error"] + self.log_tail())

    def log_tail(self) -> str:
        text = self.python_log.read_text() if self.python_log.exists() else ""
        return f"--- what the page's Python blocks printed (last lines):\n{text[-2000:]}"

    # --- shell ----------------------------------------------------------------------
    def script(self, block: Block) -> str:
        """The script a shell block runs: the block itself, or its transcript's commands."""
        steps = transcript(block.code)
        if steps is None:
            return block.code
        # Each command must end as its transcript shows: an "Error: …" line after it means a
        # non-zero exit, anything else zero. `$?` is kept for a following `echo $?`.
        out = ["set +e"]
        for n, (command, fails) in enumerate(steps, 1):
            out.append(command)
            if fails:
                check = f'[ $rc -ne 0 ] || {{ echo "command {n} should have failed" >&2; exit 1; }}'
            else:
                check = f'[ $rc -eq 0 ] || {{ echo "command {n} exited $rc" >&2; exit 1; }}'
            out.append(f"rc=$?; {check}; (exit $rc)")
        return "\n".join(out) + "\n"

    def run_shell(self, block: Block) -> None:
        try:
            done = subprocess.run(
                ["bash", "-e", "-o", "pipefail", "-c", self.script(block)],
                cwd=self.folder,
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=BLOCK_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            self.fail(block, f"did not finish within {BLOCK_TIMEOUT:g}s")
        if done.returncode != 0:
            self.fail(
                block,
                f"exited with {done.returncode}",
                f"--- stdout\n{done.stdout[-2000:]}\n--- stderr\n{done.stderr[-2000:]}",
            )

    def start_background(self, block: Block) -> None:
        log = self.folder / f".background-{block.line}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                ["bash", "-c", self.script(block)],
                cwd=self.folder,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.background.append((block, proc, log))

    def background_tails(self) -> str:
        out = ""
        for block, proc, log in self.background:
            state = "running" if proc.poll() is None else f"exited with {proc.returncode}"
            out += f"--- background block {block.where} ({state}), last lines:\n"
            out += log.read_text(errors="replace")[-1500:] + "\n"
        return out

    # --- JSON and pytest ------------------------------------------------------------
    def check_json(self, block: Block) -> None:
        try:
            json.loads(block.code)
            return
        except ValueError as whole:
            try:
                for x in block.code.splitlines():
                    if x.strip():
                        json.loads(x)
            except ValueError:
                self.fail(block, "is not JSON (one document, or one per line)", str(whole))

    def run_pytest(self, block: Block) -> None:
        name = block.filename or f"test_block_{block.line}.py"
        (self.folder / name).write_text(block.code)
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", name],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT,
        )
        if done.returncode != 0:
            self.fail(block, "has failing tests (run with pytest)", done.stdout[-3000:])

    # --- the end --------------------------------------------------------------------
    def close(self) -> list[str]:
        """Stop everything the page started; what went wrong in the background, if anything."""
        problems = []
        if self.python is not None:
            assert self.python.stdin is not None
            self.python.stdin.close()
            try:
                self.python.wait(30)
            except subprocess.TimeoutExpired:
                self.python.kill()
                self.python.wait()
            if self.reply is not None:
                self.reply.close()
        for block, proc, log in self.background:
            if proc.poll() is not None:
                problems.append(
                    f"{block.where}: the background command exited early with "
                    f"{proc.returncode}:\n{log.read_text(errors='replace')[-2000:]}"
                )
                continue
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
        return problems


def transcript(code: str) -> list[tuple[str, bool]] | None:
    """The commands of a transcript (`$ command` lines, each followed by its output) and
    whether each is shown failing (its output starts with `Error:`); None for a plain script."""
    lines = code.splitlines()
    if not any(x.startswith("$ ") for x in lines):
        return None
    steps: list[tuple[str, bool]] = []
    command: list[str] = []
    output: list[str] = []

    def flush() -> None:
        if command:
            steps.append(("\n".join(command), bool(output) and output[0].startswith("Error:")))

    for x in lines:
        if command and command[-1].rstrip().endswith("\\"):
            command.append(x)
        elif x.startswith("$ "):
            flush()
            command, output = [x[2:]], []
        elif command:
            output.append(x)
    flush()
    return steps


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
