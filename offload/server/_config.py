"""The server's configuration: tokens and their roles, kinds run elsewhere, and the bounds.

One frozen object; `offload server` fills it from its options, then the environment
(`$OFFLOAD_TOKENS`), then the defaults here.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from offload._errors import ConfigurationError
from offload.dispatch._shedding import check_bound

# Roles, weakest first; each role may do everything the ones before it may.
ROLES = ("read", "enqueue", "worker", "admin")
NAME_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"
_NAME = re.compile(NAME_PATTERN)
_TOKEN_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # matched whole (fullmatch)
MIN_TOKEN_LENGTH = 16


def valid_name(value: str) -> bool:
    """A queue or job-kind name as the HTTP API accepts it: the whole string matches (a `$`
    alone would let `"default\\n"` through as a queue of its own that shows as "default")."""
    return isinstance(value, str) and _NAME.fullmatch(value) is not None


HASH_PREFIX = "sha256:"
_HASH = re.compile(r"sha256:[0-9a-f]{64}")
SCOPE_FIELDS = ("queues", "kinds", "tenants", "data")


def hash_token(secret: str) -> str:
    """The form of a token to keep in configuration instead of the token itself:
    `sha256:` and the hex SHA-256 digest of its text (`offload hash-token` prints it)."""
    return HASH_PREFIX + hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Token:
    """A bearer token: who holds it (`name`, shown in logs), what it may do (`role`) and where
    (its scope).

    `secret` is the token itself or, better, its hash (`sha256:<hex>`, `hash_token`): the
    server needs only the hash. Scope (None: no limit): `queues` and `kinds` a worker token
    may fetch from and a producer token may enqueue into; `tenants` whose jobs the token may
    see, count and change (it sees no other tenant's, nor jobs without a tenant, and routes
    that span every tenant refuse it); `data` False: arguments and results show as `***`.
    """

    name: str
    role: str
    secret: str = field(repr=False)
    queues: tuple[str, ...] | None = None
    kinds: tuple[str, ...] | None = None
    tenants: tuple[str, ...] | None = None
    data: bool = True

    def allows(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    @property
    def hashed(self) -> str:
        """The token's hash form, whichever form it was given in."""
        return self.secret if _HASH.fullmatch(self.secret) else hash_token(self.secret)

    @property
    def digest(self) -> bytes:
        return bytes.fromhex(self.hashed[len(HASH_PREFIX) :])


@dataclass(frozen=True, slots=True)
class ExternalKind:
    """A job kind that workers outside this Python application run (over the HTTP protocol).

    The application declares no function for it, so its arguments are any JSON object and its
    options are these. `max_backlog` bounds its backlog as `@app.job(max_backlog=...)` does
    for a declared type; the app's queue bounds (`Offload(max_backlog=...)`) apply as well.
    """

    name: str
    queue: str = "default"
    priority: int = 0
    max_attempts: int = 20
    timeout: float | None = None
    result_ttl: float = 86400.0
    max_backlog: int | None = None


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Settings of one server process.

    tokens: who may call the server; empty means no authentication, loopback only.
    external_kinds: kinds accepted by `POST /jobs` that the Python app does not declare.
    allow_undeclared: accept any well-formed kind name (queue from the request, else default).
    max_wait: the longest a request may wait (`Expect: 200-ok`, a worker's long poll), seconds.
    max_body_bytes: the largest request body; None means the app's max_payload_bytes + 64 KiB.
    max_result_waits: result waits (`Prefer: wait`, `Expect: 200-ok`) allowed at once; past
        it such a request is answered 503.
    max_worker_polls: worker long polls (`/worker/fetch` with `wait`) allowed at once; past it
        such a fetch is answered 503. Each has its own bound, so waiting producers never use up
        the slots workers need to fetch, nor the other way round.
    max_waiters: the older name that set one bound for both; when given, it sets each of them.
    counts_cache_seconds: how long the overview page's and `/metrics`' reads of the store are
        reused: however many load them, the store is read at most once per period.
    allowed_hosts: extra Host names accepted without tokens (localhost names always are).
    maintenance: take part in electing the maintenance leader (promote, rescue, cron, prune),
        needed when no Python worker runs.
    session_seconds: how long a dashboard login lasts.
    trusted_proxies: addresses of reverse proxies whose `X-Forwarded-Proto` / `Forwarded:
        proto=` the server believes (a login over HTTPS through one gets a `Secure` cookie);
        "*" trusts any. Needs tokens: a server without them refuses forwarded requests.
    """

    tokens: tuple[Token, ...] = ()
    external_kinds: tuple[ExternalKind, ...] = ()
    allow_undeclared: bool = False
    max_wait: float = 30.0
    max_body_bytes: int | None = None
    max_result_waits: int = 1000
    max_worker_polls: int = 1000
    max_waiters: int | None = None
    allowed_hosts: tuple[str, ...] = ()
    maintenance: bool = False
    session_seconds: float = 12 * 3600.0
    trusted_proxies: tuple[str, ...] = ()
    counts_cache_seconds: float = 1.0

    def validate(self) -> ServerConfig:
        names = [t.name for t in self.tokens]
        if len(set(names)) != len(names):
            raise ConfigurationError("two tokens share a name; give each holder its own name")
        secrets = [t.hashed for t in self.tokens]
        if len(set(secrets)) != len(secrets):
            raise ConfigurationError("two tokens have the same secret; make each one unique")
        for token in self.tokens:
            if token.role not in ROLES:
                raise ConfigurationError(
                    f"token {token.name!r}: role {token.role!r} is not one of {', '.join(ROLES)}"
                )
            for what in ("queues", "kinds", "tenants"):
                values = getattr(token, what)
                if values is not None and (
                    isinstance(values, str) or not all(valid_name(v) for v in values)
                ):
                    raise ConfigurationError(
                        f"token {token.name!r}: {what} must be a tuple of names matching "
                        f"{NAME_PATTERN}"
                    )
        for kind in self.external_kinds:
            if not valid_name(kind.name) or not valid_name(kind.queue):
                raise ConfigurationError(
                    f"external kind {kind.name!r} on queue {kind.queue!r}: names must match "
                    f"{NAME_PATTERN}"
                )
            check_bound(kind.max_backlog, f"external kind {kind.name!r}: max_backlog")
        if not 0 < self.max_wait <= 3600:
            raise ConfigurationError("max_wait must be within (0, 3600] seconds")
        if self.max_body_bytes is not None and self.max_body_bytes < 1024:
            raise ConfigurationError("max_body_bytes must be at least 1024")
        if self.max_waiters is not None:
            if self.max_waiters < 1:
                raise ConfigurationError("max_waiters must be at least 1")
            return replace(
                self,
                max_result_waits=self.max_waiters,
                max_worker_polls=self.max_waiters,
                max_waiters=None,
            ).validate()
        if self.max_result_waits < 1 or self.max_worker_polls < 1:
            raise ConfigurationError("max_result_waits and max_worker_polls must be at least 1")
        if not 0 <= self.counts_cache_seconds <= 3600:
            raise ConfigurationError("counts_cache_seconds must be within [0, 3600]")
        if self.trusted_proxies and not self.tokens:
            raise ConfigurationError(
                "trusting a proxy needs tokens: without them the server is for this machine "
                "only and refuses forwarded requests; give tokens (--tokens-file or "
                "$OFFLOAD_TOKENS) to serve behind a proxy"
            )
        return self

    def external(self, name: str) -> ExternalKind | None:
        for kind in self.external_kinds:
            if kind.name == name:
                return kind
        return None


def parse_tokens(text: str, source: str) -> list[Token]:
    """Tokens from `name:role:secret [scope...]` entries, one per line or separated by commas.

    `secret` is the token or its hash, `sha256:<64 hex digits>`. Scope fields follow, separated
    by spaces: `queues=a|b`, `kinds=x|y`, `tenants=acme|globex`, `data=no`. Blank lines and
    lines starting with `#` are skipped.
    """
    tokens = []
    for number, raw in enumerate(re.split(r"[\n,]", text), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line, *scope_fields = line.split()
        parts = line.split(":", 2)
        if len(parts) != 3:
            raise ConfigurationError(
                f"{source}, entry {number}: expected name:role:token, e.g. ci:admin:<32 random "
                "characters>"
            )
        name, role, secret = (p.strip() for p in parts)
        if not _TOKEN_NAME.fullmatch(name):
            raise ConfigurationError(
                f"{source}, entry {number}: token name {name!r} must be 1-64 letters, digits, "
                "'_', '.' or '-'"
            )
        if role not in ROLES:
            raise ConfigurationError(
                f"{source}, entry {number}: role {role!r} is not one of {', '.join(ROLES)}"
            )
        if secret.startswith(HASH_PREFIX) and not _HASH.fullmatch(secret):
            raise ConfigurationError(
                f"{source}, entry {number} ({name}): a hashed token is sha256: and 64 lowercase "
                "hex digits; make one with `offload hash-token`"
            )
        if len(secret) < MIN_TOKEN_LENGTH or any(c.isspace() for c in secret):
            raise ConfigurationError(
                f"{source}, entry {number} ({name}): a token needs at least "
                f"{MIN_TOKEN_LENGTH} characters and no spaces; make one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        scope = _parse_scope(scope_fields, f"{source}, entry {number} ({name})")
        tokens.append(Token(name, role, secret, **scope))
    return tokens


def _parse_scope(fields: list[str], where: str) -> dict[str, Any]:
    """`queues=a|b kinds=x tenants=acme data=no` as Token fields."""
    scope: dict[str, Any] = {}
    for item in fields:
        key, eq, value = item.partition("=")
        if not eq or key not in SCOPE_FIELDS or key in scope:
            raise ConfigurationError(
                f"{where}: {item!r} is not a scope field; after the token come "
                "queues=a|b, kinds=x|y, tenants=t1|t2 and data=no, each at most once"
            )
        if key == "data":
            if value not in ("yes", "no"):
                raise ConfigurationError(f"{where}: data= takes yes or no, not {value!r}")
            scope["data"] = value == "yes"
            continue
        names = tuple(dict.fromkeys(value.split("|")))
        bad = [n for n in names if not valid_name(n)]
        if bad:
            raise ConfigurationError(
                f"{where}: {key} name {bad[0]!r} must match {NAME_PATTERN}; separate names by |"
            )
        scope[key] = names
    return scope


def load_tokens(tokens_file: str | None, environ: dict[str, str] | None = None) -> list[Token]:
    """Tokens from a file when given, else from `$OFFLOAD_TOKENS`, else none."""
    env = os.environ if environ is None else environ
    if tokens_file:
        try:
            with open(tokens_file, encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise ConfigurationError(f"cannot read tokens file {tokens_file!r}: {exc}") from exc
        tokens = parse_tokens(text, tokens_file)
        if not tokens:
            raise ConfigurationError(f"tokens file {tokens_file!r} holds no token")
        return tokens
    text = env.get("OFFLOAD_TOKENS", "")
    return parse_tokens(text, "$OFFLOAD_TOKENS") if text.strip() else []


def readable_by_others(path: str) -> bool:
    """True when a file's mode lets its group or other users read it."""
    try:
        return bool(os.stat(path).st_mode & (stat.S_IRWXG | stat.S_IRWXO))
    except OSError:
        return False


def parse_external_kinds(specs: Iterable[str]) -> list[ExternalKind]:
    """Kinds from `NAME` or `NAME=QUEUE` options."""
    kinds = []
    for spec in specs:
        name, _, queue = spec.partition("=")
        kinds.append(ExternalKind(name.strip(), queue.strip() or "default"))
    return kinds
