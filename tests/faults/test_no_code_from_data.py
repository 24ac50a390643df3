"""G1: nothing stored is ever run, unpickled or imported.

Statically, no module of offload/ uses a deserializer that can run code (pickle, marshal,
shelve, dill, jsonpickle, cloudpickle, an unsafe yaml.load), eval/exec/compile, a shell, or an
import by a computed name, except for the few uses listed in ALLOWED with why they are safe.
Dynamically, a row whose arguments are a pickle gadget, and a finished job whose result and
errors name modules and types (the way pickle-, jsonpickle- or exception-rebuilding backends
store them), go through a real worker and every reader: the gadget's file never appears, no
module named in the data is imported, and the data reads as data.
"""

from __future__ import annotations

import ast
import json
import os
import pickle
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from offload import JobFailedError, Offload
from offload.app._handle import Job
from offload.server import create_app
from offload.store._contract import JobFilter
from tests.integration._harness import REPO, Procs
from tests.store._raw import overwrite

from ._backlog import BAD, assert_buried, run_backlog
from ._ledger import Ledger, check, record_figures

PACKAGE = REPO / "offload"

# Modules whose loading of data can run code.
UNSAFE_MODULES = {"pickle", "_pickle", "cPickle", "marshal", "shelve", "dill", "jsonpickle"}
UNSAFE_MODULES |= {"cloudpickle", "runpy", "code", "codeop"}
# Calls that run or import what they are given: (module or "" for a builtin, name).
UNSAFE_CALLS = {
    ("", "eval"),
    ("", "exec"),
    ("", "compile"),
    ("", "__import__"),
    ("importlib", "import_module"),
    ("importlib", "__import__"),
    ("pkgutil", "resolve_name"),
    ("pydoc", "locate"),
    ("os", "system"),
    ("os", "popen"),
    ("yaml", "unsafe_load"),
    ("yaml", "full_load"),
}
# The legitimate uses, by (file, function): each says why it is not fed from stored data.
ALLOWED = {
    ("cli/_load.py", "load_app", "importlib.import_module"): (
        "imports the user's application named on the command line (`offload worker myapp:app`)"
        ", never a name read from the store"
    ),
    ("integrations/django/__init__.py", "_build", "importlib.import_module"): (
        "imports the application named in Django's settings (OFFLOAD['app']), never a name "
        "read from the store"
    ),
    ("integrations/django/apps.py", "ready", "importlib.import_module"): (
        "imports each installed Django app's jobs module (INSTALLED_APPS and OFFLOAD's "
        "'jobs_module' come from the settings), never a name read from the store"
    ),
    ("cli/__init__.py", "get_command", "importlib.import_module"): (
        "imports the module of an offload command from the fixed table COMMANDS, looked up by "
        "the command's name; a name not in the table imports nothing"
    ),
}


def scan(source: str, filename: str) -> list[tuple[str, str, str]]:
    """Every use in `source` of what G1 forbids, as (function, what, line): an import of an
    unsafe module, an unsafe call, yaml.load without a safe loader, or shell=True."""
    tree = ast.parse(source, filename)
    found: list[tuple[str, str, str]] = []
    aliases: dict[str, str] = {}  # local name -> module (or module.attribute) it stands for
    stack: list[str] = []  # the functions being visited

    def where(node: ast.AST) -> str:
        return stack[-1] if stack else "<module>"

    class Visitor(ast.NodeVisitor):
        def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
            stack.append(node.name)
            self.generic_visit(node)
            stack.pop()

        visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

        def visit_Import(self, node: ast.Import) -> None:
            for alias in node.names:
                aliases[alias.asname or alias.name] = alias.name
                if alias.name.split(".")[0] in UNSAFE_MODULES:
                    found.append((where(node), f"import {alias.name}", str(node.lineno)))

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            module = node.module or ""
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
            if module.split(".")[0] in UNSAFE_MODULES:
                found.append((where(node), f"from {module} import", str(node.lineno)))

        def visit_Call(self, node: ast.Call) -> None:
            name = _dotted(node.func, aliases)
            module, _, attr = name.rpartition(".")
            if (module, attr) in UNSAFE_CALLS or (module.split(".")[-1], attr) in UNSAFE_CALLS:
                found.append((where(node), name, str(node.lineno)))
            if attr == "load" and module.split(".")[-1] == "yaml":
                loader = {k.arg: _dotted(k.value, aliases) for k in node.keywords}.get("Loader")
                if loader is None or not loader.endswith("SafeLoader"):
                    found.append((where(node), "yaml.load without SafeLoader", str(node.lineno)))
            for keyword in node.keywords:
                value = keyword.value
                if keyword.arg == "shell" and not (
                    isinstance(value, ast.Constant) and value.value is False
                ):
                    found.append((where(node), f"{name}(shell=...)", str(node.lineno)))
            self.generic_visit(node)

    Visitor().visit(tree)
    return found


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str:
    """`a.b.c` of a name or attribute chain, its head resolved through imports."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ""
    parts.append(aliases.get(node.id, node.id))
    return ".".join(reversed(parts))


def test_the_scan_finds_each_forbidden_use() -> None:
    source = """
import pickle
import marshal as m
from dill import loads
import importlib, subprocess, yaml, os
from importlib import import_module as im

def f(data):
    eval(data); exec(data); compile(data, "x", "exec"); __import__(data)
    importlib.import_module(data); im(data)
    subprocess.run(data, shell=True); os.system(data)
    yaml.load(data); yaml.load(data, Loader=yaml.SafeLoader); yaml.unsafe_load(data)
"""
    found = [what for _, what, _ in scan(source, "example.py")]
    assert found == [
        "import pickle",
        "import marshal",
        "from dill import",
        "eval",
        "exec",
        "compile",
        "__import__",
        "importlib.import_module",
        "importlib.import_module",
        "subprocess.run(shell=...)",
        "os.system",
        "yaml.load without SafeLoader",
        "yaml.unsafe_load",
    ]


def test_no_module_of_offload_can_run_code_from_data() -> None:
    problems = []
    allowed_seen = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        for function, what, line in scan(path.read_text(encoding="utf-8"), str(path)):
            key = (relative, function, what)
            if key in ALLOWED:
                allowed_seen.add(key)
                continue
            problems.append(f"offload/{relative}:{line} in {function}(): {what}")
    assert not problems, "code that can run stored data:\n" + "\n".join(problems)
    assert allowed_seen == set(ALLOWED), "an allowed use is gone: drop it from ALLOWED"


# --- dynamically --------------------------------------------------------------------------
class Gadget:
    """Unpickling this runs `open(path, "w")`: the file appearing is the proof of execution."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


def _trap(folder: Path) -> str:
    """A module that leaves a file behind when imported; its name, unique to this test."""
    name = f"g1_trap_{uuid.uuid4().hex[:12]}"
    (folder / f"{name}.py").write_text(
        f"open({str(folder / 'imported')!r}, 'w').close()\nclass Boom(Exception): ...\n"
    )
    return name


def test_stored_data_is_never_run_or_imported(
    app: Offload, procs: Procs, ledger: Ledger, engine: str, tmp_path: Path
) -> None:
    traps = tmp_path / "traps"
    traps.mkdir()
    trap = _trap(traps)
    pwned, proof = traps / "pwned", traps / "proof"
    pickle.loads(pickle.dumps(Gadget(proof))).close()  # the gadget works (in the test only)
    assert proof.exists()
    env = {"PYTHONPATH": os.pathsep.join([str(REPO), str(traps)])}  # the trap is importable

    # A row whose arguments are a pickle gadget: SQLite holds the pickle's bytes as they are;
    # jsonb holds only JSON, so there it is the (protocol 0, text) pickle as a JSON string.
    def gadget(store: object, job_id: int, conn: object) -> None:
        if engine == "sqlite":
            overwrite(app.store, job_id, "args", pickle.dumps(Gadget(pwned), 5), conn)
        else:
            text = pickle.dumps(Gadget(pwned), 0).decode("ascii")
            overwrite(app.store, job_id, "args", json.dumps(text), conn)

    bad, keys = run_backlog(app, procs, ledger, 20, gadget, env=env)
    verdict = check(ledger, app, succeeds=lambda key: key != BAD)
    verdict.assert_holds()
    assert_buried(app, bad, "arguments")

    # A finished job whose result and errors name modules and types to rebuild.
    done = next(r.id for r in app.store.job_list(JobFilter(states=["completed"])))
    result = {"py/object": f"{trap}.Boom", "py/reduce": [{"py/function": "os.system"}, ["id"]]}
    overwrite(app.store, done, "result", json.dumps(result))
    entries = [
        {"exc_module": trap, "exc_type": "Boom", "exc_message": ["x"], "error": "Boom: x"},
        {"exc_module": "os", "exc_type": "system"},
    ]
    overwrite(app.store, done, "errors", json.dumps(entries))
    sys.path.insert(0, str(traps))
    try:
        _read_everything(app, bad, done, result, env)
    finally:
        sys.path.remove(str(traps))
    assert not pwned.exists(), "stored data was unpickled"
    assert not (traps / "imported").exists(), "a module named in stored data was imported"
    assert trap not in sys.modules
    record_figures("G1 no code execution from stored data", engine, verdict)


def _read_everything(
    app: Offload, bad: int, done: int, result: dict[str, Any], env: dict[str, str]
) -> None:
    """Read both jobs through every reader: the handle, the store, HTTP, the dashboard and the
    CLI (with and without --json)."""
    job = Job(app, done).refresh()
    assert job.result(timeout=1) == result and job.errors[1] == {
        "exc_module": "os",
        "exc_type": "system",
    }
    with pytest.raises(JobFailedError, match="PayloadDecodeError"):
        Job(app, bad).result(timeout=1)
    assert {r.id for r in app.store.job_list(JobFilter(limit=100))} >= {bad, done}
    with TestClient(create_app(app), base_url="http://127.0.0.1:8750") as client:
        for path in ("/jobs", f"/jobs/{bad}", f"/jobs/{done}/result", "/ui/jobs"):
            r = client.get(path)
            assert r.status_code == 200, (path, r.text)
        for job_id in (bad, done):
            r = client.get(f"/ui/jobs/{job_id}")
            assert r.status_code == 200, r.text
        assert client.get(f"/jobs/{done}/result").json()["result"] == result
        assert "exc_module" in client.get(f"/ui/jobs/{done}").text
    url = app.config.url
    for args in (
        ["jobs", "list", "--url", url],
        ["jobs", "list", "--url", url, "--json"],
        ["jobs", "show", str(bad), "--url", url],
        ["jobs", "show", str(done), "--url", url, "--json"],
    ):
        ran = subprocess.run(
            [sys.executable, "-m", "offload", *args],
            cwd=REPO,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ran.returncode == 0, ran.stdout + ran.stderr
