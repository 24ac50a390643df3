"""`offload migrate`: applies what is pending, says so, and is idempotent."""

from __future__ import annotations

from pathlib import Path

from ._helpers import CLI


def test_migrates_a_new_store_once(cli: CLI, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    first = cli("migrate", "--url", url, "--json").json()
    assert first["engine"] == "sqlite"
    assert first["previous_version"] == 0
    assert first["applied"] and first["applied"][0] == 1
    assert first["version"] == first["applied"][-1]
    again = cli("migrate", "--url", url, "--json").json()
    assert again["applied"] == [] and again["version"] == first["version"]
    assert cli("jobs", "list", "--url", url, "--json").json() == []


def test_says_what_it_did(cli: CLI, tmp_path: Path) -> None:
    url = str(tmp_path / "new.db")
    first = cli("migrate", "--url", url).out
    assert first.startswith("applied migration")  # "…migrations 1, 2, 3" once there are more
    assert "schema version" in first and "(was 0)" in first
    assert "is up to date: schema version" in cli("migrate", "--url", url).out


def test_uses_offload_url_then_offload_db(tmp_path: Path) -> None:
    target = tmp_path / "from-env.db"
    CLI(tmp_path, env={"OFFLOAD_URL": str(target)})("migrate")
    assert target.exists()
    CLI(tmp_path)("migrate")
    assert (tmp_path / "offload.db").exists()


def test_an_app_with_auto_migrate_still_reports_what_was_applied(cli: CLI, tmp_path: Path) -> None:
    url = str(tmp_path / "app.db")
    data = cli("migrate", "--app", "cliapp:app", "--url", url, "--json").json()
    assert data["previous_version"] == 0 and data["applied"]


def test_bad_url(cli: CLI) -> None:
    result = cli("migrate", "--url", "sqlite:///no/such/folder/x.db", code=2)
    assert result.err.startswith("Error: ") and "does not exist" in result.err
