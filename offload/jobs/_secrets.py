"""Secret arguments: `@app.job(secret_args=("password",))` keeps them out of what is shown.

The worker that runs the job gets every argument as given. Everything else that shows a job
(the API's job resources and listings, the dashboard, `offload jobs list/show`) shows a secret
argument as `***`, and a worker's log line about a failed attempt has the secret values in its
message masked. The names travel with each job, in its meta under `SECRET_META`, so that a
server or a command without the job's code (a bare store, another language's worker) masks
them too.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Any

from offload._errors import ConfigurationError
from offload.jobs._encrypt import hidden_record, opened_record, sealed_names
from offload.jobs._keys import keyring
from offload.store._contract import JobRecord

SECRET_META = "offload.secret_args"  # noqa: S105 - a meta key, not a password
MASK = "***"
_MIN_MASKED_TEXT = 3  # shorter values are too common to hide inside other text


def secret_option(job: str, value: Any) -> tuple[str, ...]:
    """Check `secret_args=` of a job type: argument names, as a tuple."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, (tuple, list, set, frozenset)) or not all(
        isinstance(v, str) and v for v in value
    ):
        raise ConfigurationError(
            f"job {job!r}: secret_args must name arguments, e.g. secret_args=('password',)"
        )
    return tuple(sorted(set(value)))


def check_secret_names(job: str, names: tuple[str, ...], params: Collection[str] | None) -> None:
    """At declaration: each secret must be an argument of the job (unless it takes **kwargs)."""
    if params is None:
        return
    for name in names:
        if name not in params:
            raise ConfigurationError(
                f"job {job!r}: secret_args names {name!r}, which is not an argument of the job "
                f"(its arguments: {', '.join(params) or 'none'})"
            )


def secret_names(meta: Any) -> tuple[str, ...]:
    """The secret argument names a job's meta records (none when it records nothing usable)."""
    if not isinstance(meta, Mapping):
        return ()
    names = meta.get(SECRET_META)
    if not isinstance(names, list):
        return ()
    return tuple(n for n in names if isinstance(n, str))


def masked_args(args: Any, meta: Any) -> Any:
    """`args` to show: each secret argument's value replaced by `***`."""
    names = secret_names(meta)
    if not names or not isinstance(args, Mapping):
        return args
    return {k: MASK if k in names else v for k, v in args.items()}


def masked_text(text: str, args: Any, meta: Any, names: Any = None) -> str:
    """`text` (an error message) with each secret argument's value in it replaced by `***`
    (`names`: these arguments' values instead)."""
    if names is None:
        names = secret_names(meta)
    if not names or not isinstance(args, Mapping):
        return text
    for name in names:
        value = args.get(name)
        if value is None or isinstance(value, bool):
            continue
        shown = value if isinstance(value, str) else str(value)
        if len(shown) >= _MIN_MASKED_TEXT:
            text = text.replace(shown, MASK)
    return text


def shown_record(record: JobRecord, readable: bool = False) -> JobRecord:
    """A job record fit to show: secret arguments `***`, and their values masked in the
    errors' messages and tracebacks; encrypted arguments and result `<encrypted>`, unless
    `readable` (the reader may read them) and this process holds the key (jobs/_encrypt.py)."""
    record = opened_record(record, keyring()) if readable else hidden_record(record)
    names = secret_names(record.meta)
    if not names:
        return record
    errors = [
        {
            k: masked_text(v, record.args, record.meta) if isinstance(v, str) else v
            for k, v in e.items()
        }
        for e in record.errors
    ]
    return replace(record, args=masked_args(record.args, record.meta), errors=errors)


def masked_encrypted(text: str, args: Any, meta: Any) -> str:
    """`text` with the values of an encrypted job's opened arguments replaced by `***`: what a
    worker stores and logs of a failed attempt of an encrypted job (errors are not encrypted)."""
    names = sealed_names(meta)
    return masked_text(text, args, meta, names) if names else text
