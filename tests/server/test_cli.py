"""`offload server`: refuses to expose an unauthenticated server, and starts uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from offload.cli._server import is_loopback, server


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.0.2.10", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def _run(args: list[str], env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(server, args, env={"OFFLOAD_TOKENS": "", **(env or {})})


def test_refuses_other_addresses_without_tokens(sqlite_url: str) -> None:
    result = _run(["--url", sqlite_url, "--host", "0.0.0.0"])
    assert result.exit_code != 0
    assert "refusing to bind 0.0.0.0: no tokens are configured" in result.output


def test_bad_tokens_are_reported(sqlite_url: str, tmp_path: Path) -> None:
    f = tmp_path / "tokens"
    f.write_text("ops:superuser:0123456789abcdef0123\n")
    result = _run(["--url", sqlite_url, "--tokens-file", str(f)])
    assert result.exit_code != 0 and "role 'superuser' is not one of" in result.output
    result = _run(["--url", sqlite_url], env={"OFFLOAD_TOKENS": "ci:admin:short"})
    assert result.exit_code != 0 and "at least 16 characters" in result.output


def test_starts_uvicorn_with_tokens_on_any_address(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append({"app": app, **kw}))
    f = tmp_path / "tokens"
    f.write_text("ops:admin:0123456789abcdef0123\n")
    f.chmod(0o644)
    result = _run(
        [
            "--url",
            sqlite_url,
            "--host",
            "0.0.0.0",
            "--port",
            "9999",
            "--tokens-file",
            str(f),
            "--external-kind",
            "js.add=node",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "1 token(s): ops (admin)" in result.output
    assert "readable by other users" in result.output
    assert calls[0]["host"] == "0.0.0.0" and calls[0]["port"] == 9999
    state = calls[0]["app"].state.offload
    assert state.config.external("js.add").queue == "node" and state.config.maintenance


def test_says_it_is_loopback_only_without_tokens(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: None)
    result = _run(["--url", sqlite_url])
    assert result.exit_code == 0, result.output
    assert "no tokens configured: serving on loopback only" in result.output
