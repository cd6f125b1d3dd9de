"""The test suite. The pytest plugin (aivax.testing.plugin) provides DATABASE_URL and REDIS_URL first."""

from aivax.env import env_str

from .base import *  # noqa: F403
from .base import CACHES, CELERY_BROKER_TRANSPORT_OPTIONS

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Several test runs may share one Redis: each run keeps its keys and queues under its own prefix.
_RUN_PREFIX = env_str("AIVAX_TEST_RUN_PREFIX", "aivax-test")
CACHE_KEY_PREFIX = _RUN_PREFIX
CACHES["default"]["KEY_PREFIX"] = _RUN_PREFIX
CELERY_BROKER_TRANSPORT_OPTIONS = {**CELERY_BROKER_TRANSPORT_OPTIONS, "global_keyprefix": f"{_RUN_PREFIX}:"}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"global_keyprefix": f"{_RUN_PREFIX}:"}
CELERY_TASK_DEFAULT_QUEUE = f"{_RUN_PREFIX}-queue"
OUTBOUND_ALLOW_LOOPBACK = True  # the stub upstream listens on 127.0.0.1
# The whole suite signs in from 127.0.0.1, often as the same owner: throttle tests set their own low limits.
SIGNIN_ATTEMPTS_PER_IP = 10_000
SIGNIN_ATTEMPTS_PER_ACCOUNT = 10_000
SIGNUPS_PER_IP = 10_000
FUNCTIONS_REQUIRE_HTTPS = False  # the suite's function servers listen on loopback http
