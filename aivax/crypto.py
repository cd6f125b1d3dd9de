"""Secrets at rest (upstream API keys): Fernet with a key derived from FIELD_ENCRYPTION_SECRET."""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import models


@lru_cache(maxsize=4)
def _fernet(secret: str) -> Fernet:
    digest = hashlib.sha256(b"aivax-field-encryption:" + secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(plaintext: str) -> str:
    return _fernet(settings.FIELD_ENCRYPTION_SECRET).encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet(settings.FIELD_ENCRYPTION_SECRET).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("cannot decrypt a stored secret: FIELD_ENCRYPTION_SECRET changed?") from exc


class EncryptedTextField(models.TextField):
    """A text field stored encrypted; Python sees plaintext. Empty stays empty (no secret)."""

    def from_db_value(self, value: str | None, expression: object, connection: object) -> str | None:
        if not value:
            return value
        return decrypt(value)

    def get_prep_value(self, value: object) -> object:
        value = super().get_prep_value(value)
        if not value:
            return value
        return encrypt(str(value))
