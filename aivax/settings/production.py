"""Production: refuses to start when it would be unsafe."""

from django.core.exceptions import ImproperlyConfigured

from aivax.env import env_bool, env_str

from .base import *  # noqa: F403
from .base import SECRET_KEY

_INSECURE_SECRETS = {"", "dev-insecure-secret-key-change-me", "change-me", "secret"}

DEBUG = env_bool("DEBUG", False)
if DEBUG:
    raise ImproperlyConfigured("DEBUG must be off in production (unset DEBUG or set DEBUG=0).")
if SECRET_KEY in _INSECURE_SECRETS or len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("Set SECRET_KEY to a random value of at least 32 characters in production.")
if not env_str("DATABASE_URL"):
    raise ImproperlyConfigured("Set DATABASE_URL in production; the embedded database is for development.")

# Outbound policy: base's (no loopback, no private networks unless listed in OUTBOUND_ALLOWED_PRIVATE_HOSTS).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
