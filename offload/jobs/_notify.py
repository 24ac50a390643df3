"""Webhooks of a job's end: `@app.job(notify="https://…")` or `.options(notify=URL)`.

The URL travels with each job, in its meta under `NOTIFY_META`, so that whatever ends the job
(a worker, a rescue, a cancel from the API) finds it there: the store inserts the delivery job
in the same transaction (docs/webhooks.md). Here: what a notify URL must look like, and whether
an allow-list of hosts lets it through.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from offload._errors import ConfigurationError, InvalidArgumentsError
from offload._text import shown, text_problem
from offload.store._contract import NewJob

NOTIFY_META = "offload.notify"
MAX_URL_LENGTH = 2000
_PORT = "(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
# What a notify URL is, written once for the check here and the OpenAPI document: http or
# https, a host name or IPv4 address (no credentials), a port up to 65535, then printable ASCII.
URL_PATTERN = f"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9._~!$&'()*+,;=%-]+(:{_PORT})?([/?#][!-~]*)?$"
_URL = re.compile(URL_PATTERN.removeprefix("^").removesuffix("$"))


def url_problem(url: object) -> str | None:
    """Why `url` cannot be a notify URL (None: it can): an absolute http or https URL with a
    host name or IPv4 address, of printable ASCII, without credentials."""
    if not isinstance(url, str):
        return f"must be an http or https URL as text, got {type(url).__name__}"
    if not url or len(url) > MAX_URL_LENGTH:
        return f"must be an http or https URL of 1 to {MAX_URL_LENGTH} characters"
    if _URL.fullmatch(url):
        return None
    if text_problem(url) is not None or any(c.isspace() or ord(c) < 32 for c in url):
        return f"{shown(url)} holds white space or control characters"
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        return f"{shown(url)} is no http or https URL: a notify URL starts with https:// or http://"
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if "@" in netloc:
        return f"{shown(url)} holds credentials; give them in no URL (the request is signed)"
    if not netloc or netloc.startswith(":"):
        return f"{shown(url)} names no host"
    return (
        f"{shown(url)} is not a URL offload sends to: give a host name or IPv4 address, a port "
        "up to 65535, and percent-encode characters other than printable ASCII"
    )


def notify_option(job: str, value: Any) -> str | None:
    """Check `notify=` where a job type is declared."""
    if value is None:
        return None
    problem = url_problem(value)
    if problem is not None:
        raise ConfigurationError(
            f"job {job!r}: notify {problem}, e.g. notify='https://example.com/hooks/offload'"
        )
    return str(value)


def check_notify(url: Any, allow: Sequence[str] | None = None) -> str:
    """A notify URL given with one job (per call, over HTTP, in its meta), refused with
    InvalidArgumentsError when malformed or when `allow` (host patterns) leaves its host out."""
    problem = url_problem(url)
    if problem is None and allow is not None and not host_allowed(url, allow):
        problem = (
            f"{shown(url)} names a host that the webhook allow-list leaves out "
            f"(allowed: {', '.join(allow) or 'none'})"
        )
    if problem is not None:
        raise InvalidArgumentsError(f"notify {problem}", "notify", "notify")
    return str(url)


def host_allowed(url: str, allow: Sequence[str]) -> bool:
    """Whether an allow-list entry matches the URL's host: `hooks.example.com`, `*.example.com`
    (any subdomain), an IP address, each optionally with `:port` (otherwise any port)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    for entry in allow:
        entry = entry.strip().lower()
        pattern, _, want_port = entry.rpartition(":")
        bare_ipv6 = entry.count(":") > 1 and not entry.startswith("[")
        if bare_ipv6 or not pattern or not want_port.isdigit():
            pattern, want_port = entry, ""
        pattern = pattern.strip("[]").rstrip(".")
        if want_port and int(want_port) != port:
            continue
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and host != pattern[2:]:
                return True
        elif host == pattern or _same_address(host, pattern):
            return True
    return False


def _same_address(host: str, pattern: str) -> bool:
    try:
        return ipaddress.ip_address(host) == ipaddress.ip_address(pattern)
    except ValueError:
        return False


def with_notify(job: NewJob, url: Any) -> NewJob:
    """`job` with a notify URL given apart from its options (HTTP's `notify` field), checked."""
    return replace(job, meta={**job.meta, NOTIFY_META: check_notify(url)})
