"""Which store a process uses: one rule in every process, and a warning when sources disagree.

The rule: a URL given in code (`Offload(url)`) wins; `$OFFLOAD_URL` is used only when the code
gives none; `./offload.db` when neither does; a command's `--url` overrides them for that
command. Each test runs the real `offload` command and a "web process" (a plain Python process
importing the same app module) in subprocesses, and checks which store each one really used.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ._helpers import CLI, Result, opened, wait_until

APP_MODULE = """\
from offload import Offload

app = Offload({url}lease_seconds=5.0, maintenance_interval=0.2)


@app.job()
def add(a: int, b: int) -> int:
    return a + b
"""

SECRET_URL = "postgresql://app:s3cret@db.invalid/shop"


def write_app(folder: Path, url: str | None) -> None:
    """`storeapp.py` in the folder: an app whose code gives `url` (None: `Offload()`)."""
    (folder / "storeapp.py").write_text(APP_MODULE.format(url=f"{url!r}, " if url else ""))


def web_process(cli: CLI, code: str) -> Result:
    """Run `code` in a plain Python process with the CLI's folder and environment."""
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cli.cwd,
        env=cli.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    result = Result(("python", "-c", code), proc.returncode, proc.stdout, proc.stderr)
    assert result.code == 0, str(result)
    return result


ENQUEUE_AND_WAIT = """\
from storeapp import add, app
job = add.enqueue(2, 3)
print(app.config.url)
print(job.result(timeout=30))
"""


@contextmanager
def worker_on(cli: CLI, expected_url: str, log: Path, *options: str) -> Iterator[None]:
    """`offload worker storeapp:app`, which must register in the store at `expected_url`."""
    with opened(expected_url) as store:
        store.migrate()
    proc = cli.popen("worker", "storeapp:app", "--poll-interval", "0.2", *options, log=log)

    def registered() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the worker exited with {proc.returncode}:\n{log.read_text()}")
        with opened(expected_url) as store:
            return any(w.pid == proc.pid for w in store.worker_list(60.0))

    try:
        wait_until(registered, f"the worker to register in {expected_url}", timeout=20)
        yield
    finally:
        proc.terminate()
        proc.wait(30)


def test_code_url_wins_over_the_environment_in_the_worker_and_the_web_process(
    tmp_path: Path,
) -> None:
    code_url = f"sqlite:///{tmp_path / 'code.db'}"
    write_app(tmp_path, code_url)
    cli = CLI(tmp_path, env={"OFFLOAD_URL": SECRET_URL})
    log = tmp_path / "worker.log"
    with worker_on(cli, code_url, log):
        web = web_process(cli, ENQUEUE_AND_WAIT)
    assert web.out.split() == [code_url, "5"]
    for output in (web.err, log.read_text()):
        warnings = [line for line in output.splitlines() if "differs from $OFFLOAD_URL" in line]
        assert len(warnings) == 1, output
        assert code_url in warnings[0] and "app:***@db.invalid" in warnings[0], warnings[0]
        assert "s3cret" not in output


def test_the_environment_is_used_when_the_code_gives_no_url(tmp_path: Path) -> None:
    env_url = f"sqlite:///{tmp_path / 'env.db'}"
    write_app(tmp_path, None)
    cli = CLI(tmp_path, env={"OFFLOAD_URL": env_url})
    log = tmp_path / "worker.log"
    with worker_on(cli, env_url, log):
        web = web_process(cli, ENQUEUE_AND_WAIT)
    assert web.out.split() == [env_url, "5"]
    assert "store URL" not in log.read_text() and not web.err
    assert cli("stats", "--json").json()["url"] == env_url


def test_without_url_or_environment_every_process_uses_offload_db(tmp_path: Path) -> None:
    write_app(tmp_path, None)
    cli = CLI(tmp_path)
    default = str(tmp_path / "offload.db")
    with worker_on(cli, default, tmp_path / "worker.log"):
        web = web_process(cli, ENQUEUE_AND_WAIT)
    assert web.out.split() == ["./offload.db", "5"]
    # the CLI's default is the same file: no --app needed to look at it
    stats = cli("stats", "--json").json()
    assert stats["url"] == "./offload.db"
    assert cli("jobs", "list", "--json").json()[0]["result"] == 5


def test_url_option_overrides_the_code_for_one_command_with_a_warning(tmp_path: Path) -> None:
    code_url = f"sqlite:///{tmp_path / 'code.db'}"
    other_url = f"sqlite:///{tmp_path / 'other.db'}"
    write_app(tmp_path, code_url)
    cli = CLI(tmp_path)
    log = tmp_path / "worker.log"
    with worker_on(cli, other_url, log, "--url", other_url):
        pass
    lines = log.read_text().splitlines()
    (warning,) = [line for line in lines if "overrides the store URL" in line]
    assert f"--url {other_url} overrides the store URL given in code ({code_url})" in warning


def test_url_option_equal_to_the_environment_is_silent(tmp_path: Path) -> None:
    """The test harnesses start workers this way: `--url U` with `OFFLOAD_URL=U`."""
    url = f"sqlite:///{tmp_path / 'same.db'}"
    write_app(tmp_path, None)
    cli = CLI(tmp_path, env={"OFFLOAD_URL": url})
    log = tmp_path / "worker.log"
    with worker_on(cli, url, log, "--url", url):
        pass
    assert "store URL" not in log.read_text()


def test_a_bare_command_url_overrides_the_environment_with_a_warning(tmp_path: Path) -> None:
    env_url = f"sqlite:///{tmp_path / 'env.db'}"
    given = f"sqlite:///{tmp_path / 'given.db'}"
    for url in (env_url, given):
        with opened(url) as store:
            store.migrate()
    cli = CLI(tmp_path, env={"OFFLOAD_URL": env_url})
    result = cli("stats", "--json", "--url", given)
    assert result.json()["url"] == given
    assert f"overrides the store URL given by $OFFLOAD_URL ({env_url})" in result.err
    quiet = cli("stats", "--json")
    assert quiet.json()["url"] == env_url and not quiet.err


def test_the_warning_is_logged_once_per_process_with_the_password_masked(tmp_path: Path) -> None:
    cli = CLI(tmp_path, env={"OFFLOAD_URL": SECRET_URL})
    web = web_process(
        cli,
        "from offload import Offload\n"
        "apps = [Offload('sqlite:///one.db') for _ in range(3)]\n"
        "print(apps[0].config.url)",
    )
    assert web.out.strip() == "sqlite:///one.db"
    assert web.err.count("differs from $OFFLOAD_URL") == 1, web.err
    assert "postgresql://app:***@db.invalid/shop" in web.err and "s3cret" not in web.err


def test_no_store_hint_names_app_url_and_environment(tmp_path: Path) -> None:
    cli = CLI(tmp_path)
    for command in (("stats",), ("jobs", "list")):
        result = cli(*command, code=1)
        assert "no store at ./offload.db" in result.err
        assert "--app myapp:app" in result.err, result.err
        assert "--url" in result.err and "$OFFLOAD_URL" in result.err
