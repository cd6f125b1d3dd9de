"""API key material: generation, hashing, parsing. Pure functions; no database.

Format: `sk-aivax-<12-char lookup prefix><43-char secret>` (32 random bytes of secret, base64url); public keys
(made to be embedded in web pages) read `pk-aivax-...`. The database keeps the lookup prefix (unique) and
HMAC-SHA256(API_KEY_HMAC_SECRET, whole key), compared in constant time; the HMAC covers the label, so a secret
key cannot be presented as a public one or the other way round.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass

from django.conf import settings

KEY_LABEL = "sk-aivax-"
PUBLIC_KEY_LABEL = "pk-aivax-"
_LABELS = (KEY_LABEL, PUBLIC_KEY_LABEL)
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


def generate_key(*, public: bool = False) -> NewKey:
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
    raw = f"{PUBLIC_KEY_LABEL if public else KEY_LABEL}{prefix}{secrets.token_urlsafe(32)}"
    return NewKey(raw=raw, prefix=prefix, digest=key_digest(raw))


def lookup_prefix(raw_key: str) -> str | None:
    """The lookup prefix of a presented key, or None when it cannot be one of ours."""
    label = next((label for label in _LABELS if raw_key.startswith(label)), None)
    if label is None or len(raw_key) < len(label) + PREFIX_LENGTH + 40:
        return None
    return raw_key[len(label) : len(label) + PREFIX_LENGTH]


def digests_match(stored_digest: str, raw_key: str) -> bool:
    return hmac.compare_digest(stored_digest, key_digest(raw_key))
