"""Credentials kept out of what is shown or logged: one masking rule for URLs and for log text.

A store URL may carry a password two ways, `postgresql://user:secret@host/db` and
`postgresql://host/db?password=secret` (libpq reads both; `sslpassword` too). Everything that
prints or logs a URL passes it through `mask_url`; the commands that log (`offload worker`,
`relay`, `server`) add `MaskingFilter` to their handlers, so that a URL inside any message (a
driver's error, a user's own log line) is masked too.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, urlencode, urlsplit

MASK = "***"
# Query parameters that hold a secret (compared in lower case).
SECRET_PARAMS = frozenset(
    {"password", "passwd", "pwd", "pass", "sslpassword", "secret", "token", "access_token"}
)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")
_KEYWORD = re.compile(r"(?i)\b(password|passwd|pwd|sslpassword)\s*=\s*('[^']*'|[^\s&'\",;]+)")


def mask_url(url: str) -> str:
    """`url` fit to print: a password in its user part or in a secret query parameter is
    replaced by `***`. Text that is not a URL is returned as given; a URL that cannot be
    parsed is not shown at all."""
    if "://" not in url:
        return _KEYWORD.sub(lambda m: f"{m.group(1)}={MASK}", url)
    try:
        parts = urlsplit(url)
        password = parts.password
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return "<unparseable URL>"
    secret_query = any(key.lower() in SECRET_PARAMS for key, _ in query)
    if password is None and not secret_query:
        return url
    head, rest = url.split("://", 1)
    netloc = parts.netloc
    if password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{userinfo.split(':', 1)[0]}:{MASK}@{hostport}"
    # Put together by hand: urlunsplit would turn sqlite:///x into sqlite:/x.
    shown = f"{head}://{netloc}{parts.path}"
    if parts.query:
        masked = [(k, MASK if k.lower() in SECRET_PARAMS else v) for k, v in query]
        shown += "?" + urlencode(masked, safe="*")
    if parts.fragment:
        shown += f"#{parts.fragment}"
    return shown


def mask_text(text: str) -> str:
    """`text` with every URL in it masked, and every `password=...` keyword too."""
    if "://" in text:
        text = _URL.sub(lambda m: mask_url(m.group(0)), text)
    if "=" in text:
        text = _KEYWORD.sub(lambda m: f"{m.group(1)}={MASK}", text)
    return text


class MaskingFilter(logging.Filter):
    """A handler filter that masks credentials in each record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: let the handler report it as it would
            return True
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:  # the traceback names URLs too
            record.exc_text = mask_text(logging.Formatter().formatException(record.exc_info))
        return True


def mask_logging(logger: logging.Logger | None = None) -> None:
    """Add `MaskingFilter` to every handler of `logger` (the root logger by default)."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter())
