"""Job types are validated when declared, with messages that say what to write instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from offload import ConfigurationError, Offload


@pytest.fixture
def app(tmp_path: Path) -> Offload:
    return Offload(f"sqlite:///{tmp_path / 'jobs.db'}")


def test_duplicate_name(app: Offload) -> None:
    @app.job()
    def work() -> None: ...

    with pytest.raises(ConfigurationError, match="declared twice"):

        @app.job(name="work")
        def other() -> None: ...


def test_bad_options(app: Offload) -> None:
    with pytest.raises(ConfigurationError, match="max_attempts"):
        app.job(max_attempts=0)(lambda: None)
    with pytest.raises(ConfigurationError, match="unknown option 'retries'"):
        app.job(retries=3)(lambda: None)
    with pytest.raises(ConfigurationError, match="timeout"):
        app.job(name="t", timeout=-1)(lambda: None)
    with pytest.raises(ConfigurationError, match="backoff"):
        app.job(name="b", backoff="fast")(lambda: None)


def test_bad_cron(app: Offload) -> None:
    with pytest.raises(ConfigurationError, match="invalid cron expression"):

        @app.job(cron="every five minutes")
        def tick() -> None: ...


def test_cron_job_with_required_arguments(app: Offload) -> None:
    with pytest.raises(ConfigurationError, match=r"app\.schedule"):

        @app.job(cron="*/5 * * * *")
        def tick(n: int) -> None: ...


def test_class_job_needs_run(app: Offload) -> None:
    with pytest.raises(ConfigurationError, match=r"run\(self"):

        @app.job()
        class Nothing:
            pass


def test_class_job_and_schedule(app: Offload) -> None:
    @app.job(queue="images")
    class Resize:
        def run(self, image_id: int, width: int = 100) -> dict[str, int]:
            return {"id": image_id, "w": width}

    assert Resize(3) == {"id": 3, "w": 100}
    job = Resize.enqueue(3, width=50)
    assert job.record.queue == "images"
    schedule = app.schedule("nightly", "0 3 * * *", Resize, 9)
    assert schedule.args == {"image_id": 9}


def test_bad_configuration() -> None:
    with pytest.raises(ConfigurationError, match="heartbeat_interval"):
        Offload("sqlite:///x.db", lease_seconds=5, heartbeat_interval=10)
    with pytest.raises(ConfigurationError, match="unknown store URL"):
        Offload("redis://localhost").store
    with pytest.raises(ConfigurationError, match="synchronous"):
        Offload("sqlite:///x.db?synchronous=sometimes").store


def test_url_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OFFLOAD_URL", f"sqlite:///{tmp_path / 'env.db'}")
    assert Offload().config.url.endswith("env.db")
    assert Offload("sqlite:///arg.db").config.url == "sqlite:///arg.db"
    monkeypatch.delenv("OFFLOAD_URL")
    assert Offload().config.url == "./offload.db"
