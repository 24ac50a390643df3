"""The policy options of a job type or a call: expiry, uniqueness, critical and backlog bounds.

`expires`, `unique`, `critical` and `max_backlog` are checked when declared and become a
`JobPolicy` on each job to insert; the app's admission (offload/app/_admission.py) and the store
act on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from offload._errors import ConfigurationError
from offload.dispatch._shedding import check_bound, expiry
from offload.dispatch._unique import Unique, unique_key
from offload.store._policy import JobPolicy

if TYPE_CHECKING:
    from offload.jobs._signature import Signature

POLICY_OPTIONS = ("expires", "unique", "critical", "max_backlog")


def policy_option(job: str, key: str, value: Any) -> Any:
    """Check one of the policy options of a job type or a call; return its stored form."""
    if key == "expires":
        if value is None:
            return None
        relative, absolute = expiry(value, f"job {job!r}: expires")
        if absolute is not None:
            assert isinstance(value, datetime)
            return value
        return relative
    if key == "unique":
        if value is None or value is False:
            return None
        if value is True:
            return Unique().validate(job)
        if not isinstance(value, Unique):
            raise ConfigurationError(
                f"job {job!r}: unique must be a Unique(...), e.g. "
                'unique=Unique(keys=["user_id"], period=timedelta(minutes=5))'
            )
        return value.validate(job)
    if key == "critical":
        if not isinstance(value, bool):
            raise ConfigurationError(f"job {job!r}: critical must be True or False")
        return value
    if key == "max_backlog":
        return check_bound(value, f"job {job!r}: max_backlog")
    raise AssertionError(key)


def job_policy(
    kind: str,
    signature: Signature,
    arguments: Mapping[str, Any],
    expires: float | datetime | None,
    unique: Unique | None,
    critical: bool,
    max_backlog: int | None,
) -> JobPolicy | None:
    """The policy of one job from its options, or None when it has none."""
    if expires is None and unique is None and not critical and max_backlog is None:
        return None
    expires_in, expires_at = expiry(expires)
    key = period = None
    states: tuple[str, ...] = ()
    if unique is not None:
        chosen = dict(arguments)
        for name in unique.keys or ():
            if name not in chosen:
                param = signature.sig.parameters.get(name)
                if param is not None and param.default is not param.empty:
                    chosen[name] = param.default
        found = unique_key(unique, kind, chosen)
        key, period, states = found.key, found.period, found.states
    return JobPolicy(
        expires_in=expires_in,
        expires_at=expires_at,
        unique_key=key,
        unique_period=period,
        unique_states=states,
        critical=critical,
        max_backlog=max_backlog,
    )
