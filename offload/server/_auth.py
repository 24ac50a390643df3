"""Who is calling: bearer tokens for programs, a signed session cookie for the dashboard.

Tokens are compared in constant time (SHA-256 digests, every token checked). A dashboard login
stores no token in the browser: the cookie is `name.expiry.mac`, an HMAC keyed by the token's
own secret, so rotating a token ends its sessions on every replica at once and replicas need no
shared state. Buttons carry a CSRF token derived from the session; state-changing requests
that rely on the cookie (or on no authentication at all) must also come from this origin.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from offload.server._config import ROLES, Token

COOKIE = "offload_session"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request. `via`: bearer, cookie, or local (no tokens configured)."""

    name: str
    role: str
    via: str
    session: str = ""

    def allows(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _mac(key: str | bytes, message: str) -> str:
    raw = key.encode() if isinstance(key, str) else key
    return hmac.new(raw, message.encode(), hashlib.sha256).hexdigest()


class Auth:
    """Identifies callers and mints and checks session cookies and CSRF tokens."""

    def __init__(self, tokens: tuple[Token, ...], session_seconds: float) -> None:
        self.tokens = tokens
        self.enabled = bool(tokens)
        self.session_seconds = session_seconds
        self._digests = [(_digest(t.secret), t) for t in tokens]
        self._by_name = {t.name: t for t in tokens}
        # Keys CSRF tokens when no token is configured (loopback only); one per process.
        self._local_key = secrets.token_bytes(32)

    # --- tokens ------------------------------------------------------------------------
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
            return Principal(token.name, token.role, "bearer") if token else None
        cookie = request.cookies.get(COOKIE)
        if cookie:
            token = self.session_token(cookie)
            if token is not None:
                return Principal(token.name, token.role, "cookie", cookie)
        return None

    # --- dashboard sessions ------------------------------------------------------------
    def session_for(self, token: Token) -> str:
        expires = int(time.time() + self.session_seconds)
        return f"{token.name}.{expires}.{_mac(token.secret, f'session|{token.name}|{expires}')}"

    def session_token(self, value: str) -> Token | None:
        parts = value.rsplit(".", 2)  # token names may hold dots
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        name, expires, mac = parts
        token = self._by_name.get(name)
        if token is None or int(expires) < time.time():
            return None
        expected = _mac(token.secret, f"session|{name}|{expires}")
        return token if _same(expected, mac) else None

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

    @staticmethod
    def clear_session(response: Response) -> None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")

    # --- CSRF --------------------------------------------------------------------------
    def csrf_token(self, principal: Principal) -> str:
        if principal.via == "cookie":
            token = self._by_name[principal.name]
            return _mac(token.secret, f"csrf|{principal.session}")
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


def host_allowed(request: Request, extra: tuple[str, ...]) -> bool:
    """True when the Host header names a loopback name or one of `extra`."""
    host = request.headers.get("host", "").lower()
    if host.startswith("["):
        name = host[1 : host.find("]")] if "]" in host else host
    else:
        name = host.partition(":")[0]
    return name in LOOPBACK_HOSTS or name in {h.lower() for h in extra}
