"""API key material: generation, hashing, parsing. Pure functions; no database.

Format: `sk-aivax-<12-char lookup prefix><43-char secret>` (32 random bytes of secret, base64url). The database
keeps the lookup prefix (unique) and HMAC-SHA256(API_KEY_HMAC_SECRET, whole key), compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass

from django.conf import settings

KEY_LABEL = "sk-aivax-"
PREFIX_LENGTH = 12
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class NewKey:
    raw: str
    prefix: str
    digest: str


def key_digest(raw_key: str) -> str:
    secret = settings.API_KEY_HMAC_SECRET.encode()
    return hmac.new(secret, raw_key.encode(), hashlib.sha256).hexdigest()


def generate_key() -> NewKey:
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
    raw = f"{KEY_LABEL}{prefix}{secrets.token_urlsafe(32)}"
    return NewKey(raw=raw, prefix=prefix, digest=key_digest(raw))


def lookup_prefix(raw_key: str) -> str | None:
    """The lookup prefix of a presented key, or None when it cannot be one of ours."""
    if not raw_key.startswith(KEY_LABEL) or len(raw_key) < len(KEY_LABEL) + PREFIX_LENGTH + 40:
        return None
    return raw_key[len(KEY_LABEL) : len(KEY_LABEL) + PREFIX_LENGTH]


def digests_match(stored_digest: str, raw_key: str) -> bool:
    return hmac.compare_digest(stored_digest, key_digest(raw_key))
