"""Argument versions of a job type, for rolling deploys (docs/versions.md).

`@app.job(version=3, upgrade={2: v1_to_v2, 3: v2_to_v3})`: the job type's arguments are at
version 3; `upgrade[N]` turns the arguments of version N-1 into those of version N (a dict of
arguments by name in, a dict out). Every job is stored with the version of the producer that
enqueued it; a worker upgrades older arguments step by step before binding them, and puts back
(no attempt used) a job whose version is newer than it knows, for a grace period.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from offload._errors import ConfigurationError, UpgradeError

Upgrader = Callable[[dict[str, Any]], dict[str, Any]]

VERSION_OPTIONS = ("version", "upgrade", "version_grace")
DEFAULT_GRACE = 3600.0  # seconds a job of a newer version waits for a worker that knows it


@dataclass(frozen=True, slots=True)
class Versions:
    """A job type's argument version and the upgraders that lead to it (`steps[N]` turns
    version N-1 arguments into version N); `grace`: seconds a job of a newer version waits
    (None: the application's `version_grace`)."""

    version: int = 1
    steps: Mapping[int, Upgrader] = field(default_factory=dict)
    grace: float | None = None

    def upgrade(self, job: str, arguments: dict[str, Any], stored: int) -> dict[str, Any]:
        """Arguments of version `stored` brought up to `version`, one step at a time.
        Raises UpgradeError naming the step that failed, returned something else than a dict
        of arguments, or has no upgrader (left out of `upgrade=`)."""
        for target in range(max(stored, 1) + 1, self.version + 1):
            step = f"{job}: upgrading arguments from version {target - 1} to {target}"
            if target not in self.steps:
                raise UpgradeError(
                    f"{step} is not possible: this job type has no upgrade[{target}] any more "
                    f"(it upgrades from version {min(self.steps) - 1} on)"
                )
            try:
                got = self.steps[target](dict(arguments))
            except Exception as exc:
                raise UpgradeError(f"{step} failed: {type(exc).__name__}: {exc}") from exc
            if not isinstance(got, dict) or not all(isinstance(k, str) for k in got):
                raise UpgradeError(
                    f"{step} returned {type(got).__name__}, not a dict of arguments by name"
                )
            arguments = got
        return arguments


NO_VERSIONS = Versions()


def check_version(job: str, value: Any, what: str = "version") -> int:
    """A version number: an int of at least 1."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(
            f"job {job!r}: {what} must be a whole number of at least 1, got {value!r}"
        )
    if value < 1:
        raise ConfigurationError(f"job {job!r}: {what} must be at least 1, got {value}")
    return value


def versions_of(job: str, version: Any, upgrade: Any, grace: float | None) -> Versions:
    """Check `version=` and `upgrade=` together: the upgraders are steps up to `version`, the
    last one included (producers of the version before may still be at work), without a gap;
    the first ones may be left out once no job of their versions is left."""
    version = check_version(job, version)
    if upgrade is None:
        upgrade = {}
    if not isinstance(upgrade, Mapping):
        raise ConfigurationError(
            f"job {job!r}: upgrade must be a dict of version: function, where upgrade[N] turns "
            "version N-1 arguments into version N, e.g. upgrade={2: v1_to_v2}"
        )
    steps: dict[int, Upgrader] = {}
    for key, fn in upgrade.items():
        check_version(job, key, f"a key of upgrade ({key!r})")
        if version == 1:
            raise ConfigurationError(
                f"job {job!r}: upgrade[{key}] needs version={key} or more: without version= "
                "a job type is at version 1, which has nothing to upgrade from"
            )
        if key == 1 or key > version:
            raise ConfigurationError(
                f"job {job!r}: upgrade[{key}] is no step of version={version}: upgrade[N] "
                f"turns version N-1 arguments into version N, for N from 2 to {version}"
            )
        if not callable(fn):
            raise ConfigurationError(
                f"job {job!r}: upgrade[{key}] must be a function that takes the version "
                f"{key - 1} arguments (a dict by name) and returns those of version {key}, "
                f"got {fn!r}"
            )
        steps[key] = fn
    # The steps run from the oldest upgrader to `version` without a gap; upgraders of steps no
    # job needs any more (the last job of that version is gone) may be left out.
    oldest = min(steps, default=version)
    missing = [n for n in range(oldest, version + 1) if n not in steps and n > 1]
    if missing:
        n = missing[0]
        raise ConfigurationError(
            f"job {job!r}: version={version} needs an upgrader for each step; upgrade[{n}] is "
            f"missing (a function that turns version {n - 1} arguments into version {n}; "
            f"`lambda args: args` when they did not change)"
        )
    return Versions(version, steps, grace)
