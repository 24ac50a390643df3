"""The producer's side of the dispatch policy: deadlines, fairness and limits as job options.

Job options (per type, or per call with `.options(...)`):

- `slo`: how long a job may wait (seconds or a timedelta); jobs are claimed by urgency.
- `weight`, `cost`: the type's share when jobs are overdue, and the virtual seconds a job
  takes from it (default 1.0 each): a flow advances by `cost / (weight * tenant weight)`.
- `tenant`: whom the job is for, a literal or a template of its arguments (`"{customer_id}"`);
  tenants of a type share it fairly. `tenant_weight`: a number, or a mapping from tenant to
  weight (default 1.0).
- `limit`: an `offload.Limit(...)`, concurrency and rate per key.

`dispatch_fields` turns them into the `NewJob` fields the store orders and limits by.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from offload._errors import ConfigurationError
from offload.dispatch._limits import Limit, LimitSpec, format_template, template_fields
from offload.dispatch._ordering import stride

if TYPE_CHECKING:
    from offload.jobs._signature import Signature

DISPATCH_OPTIONS = ("slo", "weight", "cost", "tenant", "tenant_weight", "limit")


def dispatch_option(job: str, key: str, value: Any) -> Any:
    """Check one dispatch option of a job type or a call; return its stored form."""
    what = f"job {job!r}: {key}"
    if key == "slo":
        if value is None:
            return None
        if isinstance(value, timedelta):
            value = value.total_seconds()
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value < 0
        ):
            raise ConfigurationError(
                f"{what} must be seconds or a timedelta, e.g. slo=timedelta(minutes=5)"
            )
        return float(value)
    if key in ("weight", "cost"):
        return _positive(value, what)
    if key == "tenant":
        if value is not None and not isinstance(value, str):
            raise ConfigurationError(
                f"{what} must be a name or a template of the arguments, e.g. tenant='{{shop_id}}'"
            )
        if value is not None:
            template_fields(value, what)
        return value
    if key == "tenant_weight":
        if isinstance(value, Mapping):
            return {str(k): _positive(v, f"{what}[{k!r}]") for k, v in value.items()}
        return _positive(value, what)
    if key == "limit":
        if value is None:
            return None
        if not isinstance(value, Limit):
            raise ConfigurationError(
                f"{what} must be an offload.Limit(...), e.g. "
                'limit=Limit("webhooks:{shop_id}", concurrency=1)'
            )
        return value.validate(job, None)
    raise ConfigurationError(f"{what}: not a dispatch option")  # pragma: no cover


def check_declaration(job: str, options: Any, signature: Signature) -> None:
    """At declaration: templates of `tenant` and `limit` must name arguments of the job."""
    params = signature.sig.parameters
    names: Collection[str] | None = list(params)
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        names = None  # any name may arrive through **kwargs
    if options.limit is not None:
        options.limit.validate(job, names)
    if options.tenant is not None and names is not None:
        for name in template_fields(options.tenant, f"job {job!r}: tenant"):
            if name not in names:
                raise ConfigurationError(
                    f"job {job!r}: tenant {options.tenant!r} names {name!r}, which is not an "
                    f"argument of the job (its arguments: {', '.join(names) or 'none'})"
                )


def dispatch_fields(
    job: str, signature: Signature, arguments: Mapping[str, Any], options: Any
) -> dict[str, Any]:
    """The `NewJob` fields for one job: tenant, slo, stride, limit_key and limit."""
    defaults = {
        p.name: p.default for p in signature.sig.parameters.values() if p.default is not p.empty
    }
    tenant = format_template(options.tenant, job, arguments, defaults, "tenant")
    tw = options.tenant_weight
    tenant_weight = tw.get(tenant, 1.0) if isinstance(tw, Mapping) else tw
    limit: Limit | None = options.limit
    spec: LimitSpec | None = None
    key = None
    if limit is not None:
        key = limit.key_for(job, arguments, defaults)
        spec = limit.spec()
    return {
        "tenant": tenant,
        "slo": options.slo,
        "stride": stride(options.cost, options.weight, tenant_weight),
        "limit_key": key,
        "limit": spec,
    }


def _positive(value: Any, what: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigurationError(f"{what} must be a positive number, got {value!r}")
    return float(value)
