"""The application's configuration: one frozen object, arguments over environment over defaults.

Which store a process uses follows one rule, the same in every process (a web app, a worker, the
CLI): the URL given in code (`Offload(url)`) wins; `$OFFLOAD_URL` is used only when the code gives
none; `./offload.db` when neither does. A command's `--url` overrides all of them for that one
command. When two of these name different stores, a warning naming both is logged once per
process, so a worker never watches one store while the app writes to another without a word.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, replace
from typing import Literal

from offload._errors import ConfigurationError
from offload._redact import mask_url as _mask_url
from offload.store import DEFAULT_URL

ENV_VAR = "OFFLOAD_URL"

UrlSource = Literal["code", "environment", "default", "command line"]

log = logging.getLogger("offload")
_warned: set[tuple[str, str, str]] = set()
_warned_lock = threading.Lock()


def mask_url(url: str) -> str:
    """A store URL fit to print: any password (user part or `?password=`) is `***`."""
    return _mask_url(url)


def _warn_once(kind: str, used: str, ignored: str, message: str) -> None:
    """Log `message` once per process for this pair of URLs."""
    key = (kind, used, ignored)
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    log.warning(message)


def resolve_store_url(code_url: str | None) -> tuple[str, UrlSource]:
    """The store URL of an app made with `Offload(code_url)`, and where it came from.

    A URL given in code wins over `$OFFLOAD_URL` (with a warning when they differ); the
    environment is used only when the code gives none; `./offload.db` when neither does.
    """
    env_url = os.environ.get(ENV_VAR) or None
    if code_url:
        if env_url and env_url != code_url:
            _warn_once(
                "env",
                code_url,
                env_url,
                f"the store URL given in code ({mask_url(code_url)}) differs from "
                f"${ENV_VAR} ({mask_url(env_url)}); using the one in code. A URL in code wins "
                f"in every process: write Offload() without a URL to take ${ENV_VAR}, or unset "
                "it.",
            )
        return code_url, "code"
    if env_url:
        return env_url, "environment"
    return DEFAULT_URL, "default"


@dataclass(frozen=True, slots=True)
class Config:
    """Settings of an `Offload` application shared by producers, workers and maintenance.

    lease_seconds: how long a claim lasts without a heartbeat; a killed worker's jobs run
        again about this long after it died.
    heartbeat_interval: how often a worker renews its leases (default a third of the lease).
    max_crashes: lost workers a job may survive before it is dead (a poison pill).
    maintenance_interval: how often the leader promotes due jobs, rescues and fires cron.
    dead_retention: seconds that dead, cancelled and shed jobs stay inspectable.
    max_run_time: how long one run of a job should take, for job types that give no
        `max_run_time` of their own (None: no limit). Iteration jobs run in slices of at most
        this long (docs/long-jobs.md); other jobs that run longer are reported
        (docs/run-time.md).
    version_grace: how long a job whose arguments are of a newer version than a worker knows
        is put back (no attempt used) for a worker that knows it, from its first refusal,
        before its attempts fail (docs/versions.md); job types may give their own.
    """

    url: str
    url_source: UrlSource = "code"
    lease_seconds: float = 30.0
    heartbeat_interval: float = 10.0
    max_crashes: int = 3
    max_payload_bytes: int = 1_000_000
    maintenance_interval: float = 1.0
    dead_retention: float = 7 * 86400.0
    auto_migrate: bool = True
    max_run_time: float | None = None
    version_grace: float = 3600.0

    def validate(self) -> Config:
        if self.lease_seconds <= 0:
            raise ConfigurationError("lease_seconds must be positive")
        if not 0 < self.heartbeat_interval < self.lease_seconds:
            raise ConfigurationError(
                f"heartbeat_interval ({self.heartbeat_interval}s) must be positive and shorter "
                f"than lease_seconds ({self.lease_seconds}s), or leases expire between beats"
            )
        if self.max_crashes < 1:
            raise ConfigurationError("max_crashes must be at least 1")
        if self.max_payload_bytes < 1024:
            raise ConfigurationError("max_payload_bytes must be at least 1024")
        if self.maintenance_interval <= 0:
            raise ConfigurationError("maintenance_interval must be positive")
        if self.max_run_time is not None and self.max_run_time <= 0:
            raise ConfigurationError("max_run_time must be positive (or None for no limit)")
        if not self.version_grace >= 0:
            raise ConfigurationError("version_grace must be a non-negative number of seconds")
        return self

    def with_url_override(self, url: str, option: str = "--url") -> Config:
        """This configuration on another store, as a command's `--url` asks for.

        The override wins, with a warning when it replaces a URL given in code or in
        `$OFFLOAD_URL` (other processes of the same app still use that one).
        """
        if url == self.url:
            return replace(self, url_source="command line")
        if self.url_source in ("code", "environment"):
            where = "in code" if self.url_source == "code" else f"by ${ENV_VAR}"
            _warn_once(
                "override",
                url,
                self.url,
                f"{option} {mask_url(url)} overrides the store URL given {where} "
                f"({mask_url(self.url)}) for this command; other processes of this app that "
                "are not given it use the other store.",
            )
        return replace(self, url=url, url_source="command line")
