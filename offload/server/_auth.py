"""Who is calling: bearer tokens for programs, a signed session cookie for the dashboard.

Tokens are compared in constant time (SHA-256 digests, every token checked); the server keeps
only those digests. A dashboard login stores no token in the browser: the cookie is
`name.expiry.mac`, an HMAC keyed by the token's digest, so rotating a token ends its sessions
on every replica at once and replicas need no shared state. Logging out revokes the session in
this server process at once (a copied cookie stops working); other replicas refuse it when it
expires or when its token is rotated.
Buttons carry a CSRF token derived from the session; state-changing requests that rely on the
cookie (or on no authentication at all) must also come from this origin.

Without tokens the server is for this machine only: a request that names a foreign Host, or
that a proxy forwarded (it may come from anywhere), is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from offload.server._config import ROLES, Token
from offload.server._scope import UNLIMITED, Scope

COOKIE = "offload_session"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
# Headers a proxy adds: a request that carries one was not made on this machine, whatever its
# Host says (a default reverse proxy passes Host 127.0.0.1 on).
FORWARDING_HEADERS = (
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
)


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request. `via`: bearer, cookie, or local (no tokens configured)."""

    name: str
    role: str
    via: str
    session: str = ""
    scope: Scope = field(default=UNLIMITED)

    def allows(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def scope_of(token: Token) -> Scope:
    return Scope.of(token.tenants, token.queues, token.kinds, token.data)


def principal_of(token: Token, via: str, session: str = "") -> Principal:
    return Principal(token.name, token.role, via, session, scope_of(token))


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def _mac(key: str | bytes, message: str) -> str:
    raw = key.encode() if isinstance(key, str) else key
    return hmac.new(raw, message.encode(), hashlib.sha256).hexdigest()


class Auth:
    """Identifies callers and mints and checks session cookies and CSRF tokens."""

    def __init__(self, tokens: tuple[Token, ...], session_seconds: float) -> None:
        self.tokens = tokens
        self.enabled = bool(tokens)
        self.session_seconds = session_seconds
        # Only hashes are kept: a token given as itself is hashed here (Token.digest).
        self._digests = [(t.digest, t) for t in tokens]
        self._by_name = {t.name: t for t in tokens}
        # Keys CSRF tokens when no token is configured (loopback only); one per process.
        self._local_key = secrets.token_bytes(32)
        self._revoked: dict[str, float] = {}  # session MAC -> its expiry (epoch seconds)
        self._revoked_lock = threading.Lock()

    # --- tokens ------------------------------------------------------------------------
    @staticmethod
    def scope_of(token: Token) -> Scope:
        return scope_of(token)

    def token_for(self, presented: str) -> Token | None:
        """The token whose secret is `presented`, checking every one in constant time."""
        digest = _digest(presented)
        found = None
        for known, token in self._digests:
            if hmac.compare_digest(known, digest):
                found = token
        return found

    def identify(self, request: Request) -> Principal | None:
        """The caller, or None when the request carries no valid credential."""
        if not self.enabled:
            return Principal("local", "admin", "local")
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                return None
            token = self.token_for(value.strip())
            return principal_of(token, "bearer") if token else None
        cookie = request.cookies.get(COOKIE)
        if cookie:
            token = self.session_token(cookie)
            if token is not None:
                return principal_of(token, "cookie", cookie)
        return None

    # --- dashboard sessions ------------------------------------------------------------
    def session_for(self, token: Token) -> str:
        """A new session's cookie value, `name.expiry.nonce-mac`: the nonce makes each login
        its own session, revoked alone."""
        expires = int(time.time() + self.session_seconds)
        return f"{token.name}.{expires}.{self._seal(token, expires, secrets.token_hex(8))}"

    @staticmethod
    def _seal(token: Token, expires: int | str, nonce: str) -> str:
        return f"{nonce}-{_mac(token.digest, f'session|{token.name}|{expires}|{nonce}')}"

    def session_token(self, value: str) -> Token | None:
        """The token a session cookie stands for, or None when it is forged, expired, revoked
        or malformed (any text: a cookie is what the client says it is)."""
        parts = value.rsplit(".", 2)  # token names may hold dots
        if len(parts) != 3 or not (parts[1].isascii() and parts[1].isdigit()):
            return None
        name, expires, mac = parts
        token = self._by_name.get(name)
        if token is None or len(expires) > 12 or int(expires) < time.time():
            return None
        nonce = mac.partition("-")[0]
        if not (nonce.isascii() and nonce.isalnum()):
            return None
        if not _same(self._seal(token, expires, nonce), mac) or mac in self._revoked:
            return None
        return token

    def revoke(self, principal: Principal) -> None:
        """End a cookie session now, in this process: the same cookie, copied, is refused."""
        if principal.via != "cookie":
            return
        name, expires, mac = principal.session.rsplit(".", 2)
        now = time.time()
        with self._revoked_lock:
            for old in [k for k, until in self._revoked.items() if until < now]:
                del self._revoked[old]  # expired sessions are refused anyway
            self._revoked[mac] = float(expires)

    def set_session(self, response: Response, request: Request, token: Token) -> None:
        response.set_cookie(
            COOKIE,
            self.session_for(token),
            max_age=int(self.session_seconds),
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    def clear_session(self, response: Response, principal: Principal | None = None) -> None:
        """Log out: revoke the caller's session, and ask the browser to forget the cookie."""
        if principal is not None:
            self.revoke(principal)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")

    # --- CSRF --------------------------------------------------------------------------
    def csrf_token(self, principal: Principal) -> str:
        if principal.via == "cookie":
            token = self._by_name[principal.name]
            return _mac(token.digest, f"csrf|{principal.session}")
        return _mac(self._local_key, f"csrf|{principal.name}|{principal.via}")

    def csrf_ok(self, principal: Principal, presented: str | None) -> bool:
        if not presented:
            return False
        return _same(self.csrf_token(principal), presented)


def _same(expected: str, presented: str) -> bool:
    """Constant-time comparison that accepts any text (compare_digest refuses non-ASCII str)."""
    return hmac.compare_digest(expected.encode(), presented.encode("utf-8", "surrogatepass"))


def same_origin(request: Request) -> bool:
    """False when a browser says the request came from another site or origin."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    if origin == "null":
        return False
    parts = urlsplit(origin)
    host = request.headers.get("host", "")
    default = {"http": 80, "https": 443}.get(parts.scheme)
    origin_host = (parts.hostname or "").lower()
    if ":" in origin_host:
        origin_host = f"[{origin_host}]"
    try:
        origin_port = parts.port or default
    except ValueError:
        return False
    return f"{origin_host}:{origin_port}" == _with_port(host.lower(), default)


def _with_port(host: str, default: int | None) -> str:
    if host.startswith("["):
        end = host.find("]")
        name, rest = host[: end + 1], host[end + 1 :]
    else:
        name, _, port = host.partition(":")
        rest = f":{port}" if port else ""
    return f"{name}{rest}" if rest else f"{name}:{default}"


def forwarded(request: Request) -> bool:
    """True when a proxy says it forwarded this request (`FORWARDING_HEADERS`)."""
    return any(name in request.headers for name in FORWARDING_HEADERS)


def forwarded_https(request: Request) -> bool:
    """True when the nearest proxy says the client's request came over HTTPS
    (`X-Forwarded-Proto: https` or `Forwarded: proto=https`; the last value counts)."""
    proto = request.headers.get("x-forwarded-proto")
    if proto is not None:
        return proto.rsplit(",", 1)[-1].strip().lower() == "https"
    header = request.headers.get("forwarded")
    if header is None:
        return False
    last = header.rsplit(",", 1)[-1]
    for pair in last.split(";"):
        key, _, value = pair.strip().partition("=")
        if key.lower() == "proto":
            return value.strip('"').lower() == "https"
    return False


def host_allowed(request: Request, extra: tuple[str, ...]) -> bool:
    """True when the Host header names a loopback name or one of `extra`."""
    host = request.headers.get("host", "").lower()
    if host.startswith("["):
        name = host[1 : host.find("]")] if "]" in host else host
    else:
        name = host.partition(":")[0]
    return name in LOOPBACK_HOSTS or name in {h.lower() for h in extra}
