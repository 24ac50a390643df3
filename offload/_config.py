"""The application's configuration: one frozen object, arguments over environment over defaults."""

from __future__ import annotations

from dataclasses import dataclass

from offload._errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class Config:
    """Settings of an `Offload` application shared by producers, workers and maintenance.

    lease_seconds: how long a claim lasts without a heartbeat; a killed worker's jobs run
        again about this long after it died.
    heartbeat_interval: how often a worker renews its leases (default a third of the lease).
    max_crashes: lost workers a job may survive before it is dead (a poison pill).
    maintenance_interval: how often the leader promotes due jobs, rescues and fires cron.
    dead_retention: seconds that dead, cancelled and shed jobs stay inspectable.
    """

    url: str
    lease_seconds: float = 30.0
    heartbeat_interval: float = 10.0
    max_crashes: int = 3
    max_payload_bytes: int = 1_000_000
    maintenance_interval: float = 1.0
    dead_retention: float = 7 * 86400.0
    auto_migrate: bool = True

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
        return self
