"""Store passwords never show: not in what the commands print or log, and not on the command
lines of a supervisor's worker processes (readable by every local user in /proc)."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from offload._redact import MaskingFilter, mask_text, mask_url
from offload.cli._output import safe_url

from ._helpers import APP, CLI, opened, wait_until

USER_SECRET = "hunter2-in-userinfo"
QUERY_SECRET = "hunter2-in-query"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://ada:pw@db:5432/app", "postgresql://ada:***@db:5432/app"),
        ("postgresql://db/app?password=pw&schema=x", "postgresql://db/app?password=***&schema=x"),
        ("postgresql://db/app?sslpassword=pw", "postgresql://db/app?sslpassword=***"),
        ("postgresql://a:p%40ss@db/app?PASSWORD=pw", "postgresql://a:***@db/app?PASSWORD=***"),
        ("postgresql://a:@db/app", "postgresql://a:***@db/app"),
        ("sqlite:///tmp/x.db", "sqlite:///tmp/x.db"),
        ("host=db password=pw dbname=app", "host=db password=*** dbname=app"),
    ],
)
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown
    assert safe_url(url) == shown


def test_log_lines_are_masked() -> None:
    text = "could not reach postgresql://u:pw1@h/db?password=pw2 (password=pw3)"
    assert not re.search("pw[123]", mask_text(text)), mask_text(text)
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "at %s", ("postgres://u:pw1@h",), None
    )
    assert MaskingFilter().filter(record)
    assert record.getMessage() == "at postgres://u:***@h"


def _secret_url(pg_url: str) -> str:
    """The test's PostgreSQL URL with a password in its user part and in its query (the
    server trusts local connections, so neither is checked)."""
    head, rest = pg_url.split("://", 1)
    userinfo, at, hostpart = rest.rpartition("@")
    user = userinfo or "postgres"
    joiner = "&" if "?" in hostpart else "?"
    return f"{head}://{user}:{USER_SECRET}@{hostpart}{joiner}sslpassword={QUERY_SECRET}"


def _children(supervisor: int) -> list[int]:
    path = Path(f"/proc/{supervisor}/task/{supervisor}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@pytest.mark.engine("postgres")
@pytest.mark.parametrize("given", ["option", "environment"])
def test_supervised_workers_never_show_the_password(
    store_url: str, tmp_path: Path, given: str
) -> None:
    url = _secret_url(store_url)
    with opened(url) as store:
        store.migrate()
    cli = CLI(tmp_path, env={"OFFLOAD_URL": url} if given == "environment" else None)
    args = ["worker", APP, "--processes", "2", "--poll-interval", "0.2"]
    if given == "option":
        args += ["--url", url]
    log = tmp_path / "worker.log"
    proc = cli.popen(*args, log=log)
    try:
        children = wait_until(
            lambda: kids if len(kids := _children(proc.pid)) == 2 else None,
            "two worker processes",
        )
        wait_until(lambda: log.read_text().count("offload worker: ") == 2, "workers to start")
        # The supervisor's own command line is what the user typed; its children's are ours.
        for pid in children if given == "option" else [proc.pid, *children]:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
            assert "hunter2" not in cmdline and "postgres" not in cmdline, cmdline
        with opened(url) as store:  # the workers did reach the store
            wait_until(lambda: len(store.worker_list(60.0)) == 2, "two registered workers")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    output = log.read_text()
    assert "hunter2" not in output, output
    assert "***" in output, output
    assert os.environ.get("OFFLOAD_SUPERVISED_URL") is None
