"""Every environment variable the service reads is read here, and only here."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("AIVAX_DATA_DIR", BASE_DIR / ".data"))
EMBEDDED_PG_DIR = DATA_DIR / "postgres"
EMBEDDED_DB_NAME = "aivax"


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def embedded_database_url() -> str:
    """Where the embedded PostgreSQL listens: a unix socket inside its data folder."""
    return f"postgresql://postgres@/{EMBEDDED_DB_NAME}?host={EMBEDDED_PG_DIR}"


def database_url() -> str:
    return env_str("DATABASE_URL") or embedded_database_url()


def redis_url() -> str:
    return env_str("REDIS_URL") or "redis://127.0.0.1:6379/0"


def parse_database_url(url: str) -> dict[str, object]:
    """Turn postgres://user:pass@host:port/name?host=/socket into Django's DATABASES entry."""
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise ValueError(f"DATABASE_URL must be a postgresql:// URL, got scheme {parsed.scheme!r}")
    query = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
    host = query.pop("host", None) or unquote(parsed.hostname or "")
    port = query.pop("port", None) or (str(parsed.port) if parsed.port else "")
    options: dict[str, object] = dict(query)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parsed.path.lstrip("/")),
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": host,
        "PORT": port,
        "OPTIONS": options,
    }
