"""Fixtures of the acceptance layer: a CLI runner per test, fresh stores, and one seeded store
(jobs that completed, died, wait or are scheduled) that tests get a private copy of."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._helpers import CLI, Seeded, copy_store, opened, running_worker, wait_state


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    """Runs `offload` with the test's temp folder as working directory."""
    return CLI(tmp_path)


@pytest.fixture
def fresh_url(tmp_path: Path) -> str:
    """A migrated, empty SQLite store."""
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    with opened(url) as store:
        store.migrate()
    return url


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Seeded]:
    """A store populated once through the real CLI and a real worker."""
    folder = tmp_path_factory.mktemp("seeded")
    path = folder / "template.db"
    url = f"sqlite:///{path}"
    cli = CLI(folder)

    def enqueue(*args: str) -> int:
        return int(cli("enqueue", "cliapp:app", *args, "--url", url).out)

    with running_worker(cli, url, folder / "worker.log"):
        ids = Seeded(
            added=enqueue("add", "a=1", "b=2"),
            greeted=enqueue("greet", "--args", '{"name": "ada"}'),
            exploded=enqueue("explode", "reason=kaput"),
            later=enqueue("greet", "name=later", "--delay", "3600"),
            waiting=enqueue("add", "a=1", "b=1", "--queue", "nobody"),
        )
        wait_state(url, ids.added, "completed")
        wait_state(url, ids.greeted, "completed")
        wait_state(url, ids.exploded, "dead")
    return path, ids


@pytest.fixture
def seeded(seeded_template: tuple[Path, Seeded], tmp_path: Path) -> tuple[str, Seeded]:
    """A private copy of the seeded store: its URL and its jobs' ids."""
    template, ids = seeded_template
    target = tmp_path / "seeded.db"
    copy_store(template, target)
    return f"sqlite:///{target}", ids
