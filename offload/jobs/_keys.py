"""Encryption keys and the cipher of encrypted job data (docs/security.md, "Encryption at rest").

Keys are named, newest first: `OFFLOAD_KEYS="k2:<base64>,k1:<base64>"` (entries separated by
commas or new lines), or the same entries one per line in the file `OFFLOAD_KEYS_FILE` names
(`#` starts a comment). A key is 32 random bytes in base64 (`offload keys new` makes one). New
data is sealed with the first key; data sealed with any key listed still opens, so a key is
rotated by putting a new one first, re-encrypting (`offload keys rotate`) and then dropping the
old one.

A sealed value is the text `enc:v1:<key id>:<base64url of nonce + ciphertext + tag>`: AES-256
in GCM mode with a random 96-bit nonce, its associated data naming the job type and the field
(`offload/<kind>/args.<name>`, `offload/<kind>/result`), so that a sealed value moved to another
field or job type does not open. `cryptography` is imported on first use only, so that
`import offload` stays light (install it with `pip install 'offload[encryption]'`).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from offload._errors import ConfigurationError, EncryptionKeyError

KEYS_ENV = "OFFLOAD_KEYS"
KEYS_FILE_ENV = "OFFLOAD_KEYS_FILE"
PREFIX = "enc:v1:"
KEY_BYTES = 32
NONCE_BYTES = 12
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_SEALED = re.compile(r"enc:v1:([A-Za-z0-9_-]{1,32}):([A-Za-z0-9_-]+)")
SETTINGS = f"${KEYS_ENV} or ${KEYS_FILE_ENV}"


@dataclass(frozen=True, slots=True)
class Keyring:
    """Named keys, newest first: the first seals, any of them opens."""

    keys: tuple[tuple[str, bytes], ...]
    source: str = ""

    @property
    def newest(self) -> str:
        return self.keys[0][0]

    def key(self, key_id: str) -> bytes | None:
        for name, key in self.keys:
            if name == key_id:
                return key
        return None

    def seal(self, value: Any, aad: str) -> str:
        """`value`'s JSON text sealed with the newest key."""
        from offload.store._codec import dumps

        key_id, key = self.keys[0]
        nonce = secrets.token_bytes(NONCE_BYTES)
        data = _aesgcm(key).encrypt(nonce, dumps(value).encode(), aad.encode())
        body = base64.urlsafe_b64encode(nonce + data).rstrip(b"=").decode()
        return f"{PREFIX}{key_id}:{body}"

    def open(self, sealed: Any, aad: str) -> Any:
        """The value a sealed text holds; `EncryptionKeyError` when its key is not here,
        `ValueError` when it is not a sealed text or does not authenticate."""
        import json

        from cryptography.exceptions import InvalidTag

        key_id, body = parse(sealed)
        key = self.key(key_id)
        if key is None:
            raise EncryptionKeyError(
                f"the data was encrypted with key {key_id!r}, which is not configured here "
                f"(keys here: {', '.join(n for n, _ in self.keys)}); add it to {SETTINGS}"
            )
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        try:
            plain = _aesgcm(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad.encode())
        except InvalidTag:
            raise ValueError(
                f"encrypted data under key {key_id!r} does not authenticate for {aad}: the key "
                "with that name is not the one that encrypted it, or the data was changed"
            ) from None
        return json.loads(plain)


def parse(sealed: Any) -> tuple[str, str]:
    """The key id and body of a sealed text; ValueError when `sealed` is none."""
    match = _SEALED.fullmatch(sealed) if isinstance(sealed, str) else None
    if match is None:
        raise ValueError("the stored value is not encrypted data (enc:v1:<key id>:...)")
    return match[1], match[2]


def key_id_of(sealed: Any) -> str | None:
    """The key id a sealed text names (None when it is not one)."""
    try:
        return parse(sealed)[0]
    except ValueError:
        return None


def _aesgcm(key: bytes) -> Any:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:  # pragma: no cover - depends on the installation
        raise ConfigurationError(
            "encrypted jobs need the cryptography package: pip install 'offload[encryption]'"
        ) from None
    return AESGCM(key)


def parse_keys(text: str, source: str) -> Keyring:
    """Keys from `id:base64` entries (commas or new lines between them, `#` comments)."""
    keys: list[tuple[str, bytes]] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        for entry in line.split(","):
            entry = entry.strip()
            if not entry:
                continue
            key_id, sep, encoded = entry.partition(":")
            key_id = key_id.strip()
            if not sep or not _KEY_ID.fullmatch(key_id):
                raise ConfigurationError(
                    f"{source}: each key is `id:base64` with an id of letters, digits, - or _ "
                    "(at most 32), newest first, e.g. k2:<key>,k1:<key>; make one with "
                    "`offload keys new`"
                )
            try:
                key = base64.b64decode(
                    encoded.strip().replace("-", "+").replace("_", "/") + "==", validate=False
                )
            except (binascii.Error, ValueError):
                key = b""
            if len(key) != KEY_BYTES:
                raise ConfigurationError(
                    f"{source}: key {key_id!r} is not {KEY_BYTES} bytes in base64; make one "
                    "with `offload keys new`"
                )
            if any(n == key_id for n, _ in keys):
                raise ConfigurationError(f"{source}: key id {key_id!r} is given twice")
            keys.append((key_id, key))
    if not keys:
        raise ConfigurationError(f"{source} holds no key; make one with `offload keys new`")
    return Keyring(tuple(keys), source)


_cache: dict[tuple[str | None, str | None, float], Keyring | None] = {}


def keyring(required_by: str | None = None) -> Keyring | None:
    """The keys this process is given ($OFFLOAD_KEYS, else the file $OFFLOAD_KEYS_FILE names),
    read again when either changes; None when neither is set, or `EncryptionKeyError` naming
    `required_by` (what needs a key) then."""
    inline = os.environ.get(KEYS_ENV) or None
    path = os.environ.get(KEYS_FILE_ENV) or None
    mtime = 0.0
    if inline is None and path is not None:
        try:
            mtime = Path(path).stat().st_mtime
        except OSError as exc:
            raise ConfigurationError(f"${KEYS_FILE_ENV} names {path!r}: {exc}") from None
    cache_key = (inline, path, mtime)
    found = _cache.get(cache_key)
    if found is None and cache_key not in _cache:
        if inline is not None:
            found = parse_keys(inline, f"${KEYS_ENV}")
        elif path is not None:
            found = parse_keys(Path(path).read_text("utf-8"), f"${KEYS_FILE_ENV} ({path})")
        _cache.clear()
        _cache[cache_key] = found
    if found is None and required_by is not None:
        raise EncryptionKeyError(
            f"{required_by}, and no encryption key is configured: set {SETTINGS} "
            "(make a key with `offload keys new`; docs/security.md)"
        )
    return found


def new_key_entry(key_id: str | None = None) -> str:
    """A fresh `id:base64` key entry (id default: k<UTC date and time>)."""
    if key_id is None:
        key_id = "k" + datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    if not _KEY_ID.fullmatch(key_id):
        raise ConfigurationError(
            "a key id is letters, digits, - or _ (at most 32 characters), e.g. k2"
        )
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()}"
