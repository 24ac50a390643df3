"""Encrypted jobs: `@app.job(encrypt=True)` (every argument) or `encrypt=("card", "ssn")`.

The producer seals the chosen arguments before the row leaves the process, and the worker
seals the result before it is acknowledged, each with the newest key (offload/jobs/_keys.py);
the worker opens the arguments before binding them (and before any upgrade by version). The
names of the sealed arguments travel in the job's meta under `ENCRYPT_META` (its presence also
says that the result is sealed), so that a server or a command without the job's code shows
them as `<encrypted>`. What is not sealed: the job type, queue, meta, tenant, unique and limit
keys, errors and tracebacks (docs/security.md).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Any

from offload._errors import ConfigurationError, EncryptionKeyError, PayloadDecodeError
from offload.dispatch._limits import template_fields
from offload.jobs._keys import Keyring, key_id_of, keyring
from offload.store._contract import JobRecord
from offload.store._sealed import SEALED_META, Reseal, SealedRow

ENCRYPT_META = SEALED_META  # "offload.encrypted", which the store finds them by
SHOWN = "<encrypted>"
ALL = ("*",)  # encrypt=True: every argument the job is given


def encrypt_option(job: str, value: Any) -> tuple[str, ...]:
    """Check `encrypt=` of a job type: True (every argument), False/None, or argument names."""
    if value is None or value is False:
        return ()
    if value is True:
        return ALL
    if isinstance(value, str):
        value = (value,)
    if (
        not isinstance(value, (tuple, list, set, frozenset))
        or not value
        or not all(isinstance(v, str) and v and v != "*" for v in value)
    ):
        raise ConfigurationError(
            f"job {job!r}: encrypt must be True (every argument) or name arguments, "
            "e.g. encrypt=('card', 'ssn')"
        )
    return tuple(sorted(set(value)))


def check_encrypt_names(job: str, names: tuple[str, ...], params: Collection[str] | None) -> None:
    """At declaration: each argument to encrypt must be one of the job's (unless it takes
    **kwargs)."""
    if params is None or names == ALL:
        return
    unknown = [n for n in names if n not in params]
    if unknown:
        raise ConfigurationError(
            f"job {job!r}: encrypt names {', '.join(map(repr, unknown))}, which "
            f"{'is not an argument' if len(unknown) == 1 else 'are not arguments'} of the job "
            f"(its arguments: {', '.join(params) or 'none'})"
        )


def check_plain_derivations(job: str, options: Any) -> None:
    """At declaration: what is stored in plain text may not be made from an encrypted argument
    (a tenant or a limit key template naming one, unique keys hashing one), or the store would
    hold it, or an unsalted hash of it, beside its ciphertext."""
    names: tuple[str, ...] = options.encrypt
    if not names:
        return

    def encrypted(name: str) -> bool:
        return names == ALL or name in names

    uses: list[tuple[str, list[str]]] = []
    if options.tenant is not None:
        uses.append(("tenant", template_fields(options.tenant, f"job {job!r}: tenant")))
    if options.limit is not None and options.limit.key:
        uses.append(("limit key", template_fields(options.limit.key, f"job {job!r}: limit")))
    if options.unique is not None:
        keys = options.unique.keys
        uses.append(("unique keys", ["*"] if keys is None else list(keys)))
    for what, fields in uses:
        bad = [f for f in fields if f == "*" or encrypted(f)]
        if bad:
            shown = "every argument" if bad == ["*"] else f"the argument {bad[0]!r}"
            raise ConfigurationError(
                f"job {job!r}: its {what} would be made from {shown}, which it encrypts: the "
                f"store keeps the {what} in plain text; use an argument that is not encrypted"
            )


def _aad(kind: str, field: str) -> str:
    return f"offload/{kind}/{field}"


def seal_args(
    kind: str, args: dict[str, Any], names: tuple[str, ...]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Arguments with the chosen ones sealed, and the meta entry that records them;
    `EncryptionKeyError` when no key is configured."""
    ring = keyring(f"job {kind!r} encrypts its arguments")
    assert ring is not None
    chosen = list(args) if names == ALL else [n for n in names if n in args]
    sealed = {
        k: ring.seal(v, _aad(kind, f"args.{k}")) if k in chosen else v for k, v in args.items()
    }
    return sealed, {ENCRYPT_META: chosen}


def sealed_names(meta: Any) -> list[str] | None:
    """The sealed argument names a job's meta records; None: the job is not encrypted."""
    if not isinstance(meta, Mapping):
        return None
    names = meta.get(ENCRYPT_META)
    if not isinstance(names, list):
        return None
    return [n for n in names if isinstance(n, str)]


def open_args(kind: str, args: dict[str, Any], meta: Any, ring: Keyring | None = None) -> Any:
    """A job's stored arguments with the sealed ones opened (as they are when it has none).
    `EncryptionKeyError` when a key is missing, `PayloadDecodeError` when one does not open."""
    names = sealed_names(meta)
    if not names:
        return args
    if ring is None:
        ring = keyring(f"job {kind!r} has encrypted arguments")
        assert ring is not None
    opened = dict(args)
    for name in names:
        if name in opened:
            try:
                opened[name] = ring.open(opened[name], _aad(kind, f"args.{name}"))
            except ValueError as exc:
                raise PayloadDecodeError(f"argument {name!r}: {exc}") from None
    return opened


def seal_result(kind: str, result: Any, meta: Any) -> Any:
    """A result to store: sealed when the job is encrypted."""
    if sealed_names(meta) is None:
        return result
    ring = keyring(f"job {kind!r} encrypts its result")
    assert ring is not None
    return ring.seal(result, _aad(kind, "result"))


def open_result(kind: str, result: Any, meta: Any, ring: Keyring | None = None) -> Any:
    """A stored result opened when the job is encrypted (None stays None: no result yet)."""
    if result is None or sealed_names(meta) is None:
        return result
    if ring is None:
        ring = keyring(f"job {kind!r} has an encrypted result")
        assert ring is not None
    try:
        return ring.open(result, _aad(kind, "result"))
    except ValueError as exc:
        raise PayloadDecodeError(f"the result: {exc}") from None


def hidden_args(args: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """Arguments not yet sealed (a schedule's, in code) as a job type with `encrypt=names`
    shows them: the ones it encrypts as `<encrypted>`."""
    if not names:
        return args
    return {k: SHOWN if names == ALL or k in names else v for k, v in args.items()}


def hidden_record(record: JobRecord) -> JobRecord:
    """A record to show to a reader who may not read encrypted data: each sealed argument and
    the result as `<encrypted>`."""
    names = sealed_names(record.meta)
    if names is None:
        return record
    args = {k: SHOWN if k in names else v for k, v in record.args.items()}
    result = None if record.result is None else SHOWN
    return replace(record, args=args, result=result)


def opened_record(record: JobRecord, ring: Keyring | None) -> JobRecord:
    """A record with its sealed arguments and result opened with `ring`; what cannot be opened
    (no key here, a key missing from `ring`, data that does not authenticate) is `<encrypted>`."""
    names = sealed_names(record.meta)
    if names is None:
        return record
    hidden = hidden_record(record)
    if ring is None:
        return hidden
    args = dict(record.args)
    for name in names:
        if name in args:
            try:
                args[name] = ring.open(args[name], _aad(record.kind, f"args.{name}"))
            except (ValueError, EncryptionKeyError):
                args[name] = SHOWN
    try:
        result = open_result(record.kind, record.result, record.meta, ring)
    except (PayloadDecodeError, EncryptionKeyError):
        result = hidden.result
    return replace(record, args=args, result=result)


def resealed(row: SealedRow, ring: Keyring) -> Reseal | None:
    """The row's sealed values that an older key sealed, sealed again with the newest key
    (None: every one is under the newest already). `EncryptionKeyError` when a key is missing
    here, `ValueError` when a value does not open."""
    names = sealed_names(row.meta) or []
    args = dict(row.args)
    changed = False
    for name in names:
        if name in args and key_id_of(args[name]) not in (None, ring.newest):
            aad = _aad(row.kind, f"args.{name}")
            args[name] = ring.seal(ring.open(args[name], aad), aad)
            changed = True
    result = row.result
    if key_id_of(result) not in (None, ring.newest):
        aad = _aad(row.kind, "result")
        result = ring.seal(ring.open(result, aad), aad)
        changed = True
    return Reseal(row, args, result) if changed else None
