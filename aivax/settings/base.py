"""Settings shared by every flavour (dev, test, production). Values come from aivax.env."""

from __future__ import annotations

from aivax import env, log

BASE_DIR = env.BASE_DIR

SECRET_KEY = env.env_str("SECRET_KEY", "dev-insecure-secret-key-change-me")
# Keys are hashed with their own secret so that rotating SECRET_KEY (sessions) does not void every API key.
API_KEY_HMAC_SECRET = env.env_str("API_KEY_HMAC_SECRET") or SECRET_KEY
# Fernet key material for upstream credentials stored at rest (derived from this secret).
FIELD_ENCRYPTION_SECRET = env.env_str("FIELD_ENCRYPTION_SECRET") or SECRET_KEY

DEBUG = env.env_bool("DEBUG", False)
ALLOWED_HOSTS = env.env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "aivax",
    "accounts",
    "gateways",
    "knowledge",
    "billing",
    "quotas",
    "console",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# /api/ requests are served by a handler with this list instead (see aivax/asgi.py): no sessions, CSRF,
# messages or static files there, and no thread hops for them. ApiEdgeMiddleware (outermost) keeps ALLOWED_HOSTS,
# the security headers and JSON errors (aivax/asgi_routing.py); both are async.
API_MIDDLEWARE: list[str] = [
    "aivax.asgi_routing.ApiEdgeMiddleware",
    "accounts.cors.PublicKeyCorsMiddleware",  # answers only inference paths
]

ROOT_URLCONF = "aivax.urls"
ASGI_APPLICATION = "aivax.asgi.application"
WSGI_APPLICATION = "aivax.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.parse_database_url(env.database_url())}
# Persistent connections: async views run ORM calls on a thread pool whose threads keep a connection each.
DATABASES["default"]["CONN_MAX_AGE"] = env.env_int("DB_CONN_MAX_AGE", 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Behind PgBouncer in transaction mode server-side cursors break (docs/scaling.md).
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env.env_bool("DB_DISABLE_SERVER_SIDE_CURSORS", False)
# The async pool of the inference hot path (aivax/adb.py), per web process: its size, how long a request may
# wait for a connection before it is answered 503 + Retry-After, and the connect timeout of every connection.
DB_POOL_MIN_SIZE = env.env_int("DB_POOL_MIN_SIZE", 1)
DB_POOL_MAX_SIZE = env.env_int("DB_POOL_MAX_SIZE", 32)
DB_POOL_TIMEOUT = float(env.env_str("DB_POOL_TIMEOUT", "10"))
DB_CONNECT_TIMEOUT = float(env.env_str("DB_CONNECT_TIMEOUT", "5"))
DB_POOL_RECONNECT_SECONDS = float(env.env_str("DB_POOL_RECONNECT_SECONDS", "5"))
# A settle (the answer is already delivered) may wait this long for a pooled connection; past it, the settlement
# is kept in Redis and written in the background (billing/services/pending.py).
BILLING_SETTLE_WAIT_SECONDS = float(env.env_str("BILLING_SETTLE_WAIT_SECONDS", "30"))

REDIS_URL = env.redis_url()
CACHE_KEY_PREFIX = env.env_str("CACHE_KEY_PREFIX", "aivax")
# Redis clients (aivax/redis_client.py and the cache): one blocking pool per process (per event loop for async),
# waiting at most REDIS_POOL_TIMEOUT for a free connection instead of raising at once; socket timeouts so a Redis
# that hangs cannot hang requests; after a failure Redis is skipped for REDIS_RETRY_SECONDS (the database answers).
REDIS_MAX_CONNECTIONS = env.env_int("REDIS_MAX_CONNECTIONS", 64)
REDIS_POOL_TIMEOUT = float(env.env_str("REDIS_POOL_TIMEOUT", "2"))
REDIS_SOCKET_TIMEOUT = float(env.env_str("REDIS_SOCKET_TIMEOUT", "1"))
REDIS_RETRY_SECONDS = float(env.env_str("REDIS_RETRY_SECONDS", "2"))
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": CACHE_KEY_PREFIX,
        "OPTIONS": {
            "pool_class": "redis.BlockingConnectionPool",
            "max_connections": REDIS_MAX_CONNECTIONS,
            "timeout": REDIS_POOL_TIMEOUT,
            "socket_timeout": REDIS_SOCKET_TIMEOUT,
            "socket_connect_timeout": REDIS_SOCKET_TIMEOUT,
            "retry_on_timeout": True,
            "health_check_interval": 30,
        },
    }
}

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/console/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Django 6 default, opted into now (silences the transitional warning on URL fields).
FORMS_URLFIELD_ASSUME_HTTPS = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = env.DATA_DIR / "media"
DATA_UPLOAD_MAX_MEMORY_SIZE = env.env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 30 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

EMAIL_BACKEND = env.env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.env_str("DEFAULT_FROM_EMAIL", "aivax <no-reply@localhost>")

# Celery: broker and results on Redis; tasks are acknowledged late so a killed worker's task is redelivered.
CELERY_BROKER_URL = env.env_str("CELERY_BROKER_URL") or REDIS_URL
CELERY_RESULT_BACKEND = env.env_str("CELERY_RESULT_BACKEND") or REDIS_URL
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "aivax"
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {"visibility_timeout": 3600}
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "billing-release-stale-reservations": {"task": "billing.release_stale_reservations", "schedule": 300.0},
    "knowledge-requeue-stale-documents": {"task": "knowledge.requeue_stale_documents", "schedule": 300.0},
    "gateways-responses-delete-expired": {"task": "gateways.responses_delete_expired", "schedule": 3600.0},
}
CELERY_IMPORTS = ["gateways.responses.tasks"]
CELERY_TIMEZONE = "UTC"
# Workers log through settings.LOGGING (JSON lines with the request id), not Celery's own root-logger setup.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Knowledge indexing: text documents per indexing task (their chunks share model calls), and the local embedding
# model's intra-op threads (0 = every core this process may run on; set 1 with a worker concurrency above 1).
KNOWLEDGE_INDEX_BATCH = env.env_int("KNOWLEDGE_INDEX_BATCH", 32)
KNOWLEDGE_EMBEDDING_THREADS = env.env_int("AIVAX_EMBEDDING_THREADS", 0)

# Outbound calls to upstream models.
UPSTREAM_CONNECT_TIMEOUT = float(env.env_str("UPSTREAM_CONNECT_TIMEOUT", "5"))
UPSTREAM_READ_TIMEOUT = float(env.env_str("UPSTREAM_READ_TIMEOUT", "120"))
UPSTREAM_TOTAL_TIMEOUT = float(env.env_str("UPSTREAM_TOTAL_TIMEOUT", "600"))
# Where tenants' endpoints and embedding URLs may point (aivax/outbound/). Metadata, link-local and unique-local
# addresses are refused whatever these say; loopback and private networks only when allowed here.
OUTBOUND_ALLOW_LOOPBACK = env.env_bool("OUTBOUND_ALLOW_LOOPBACK", False)
OUTBOUND_ALLOWED_PRIVATE_HOSTS = env.env_list("OUTBOUND_ALLOWED_PRIVATE_HOSTS", [])  # host names or CIDRs
OUTBOUND_MAX_CONNECTIONS = env.env_int("OUTBOUND_MAX_CONNECTIONS", 512)  # per pooled client (event loop)
OUTBOUND_MAX_KEEPALIVE_CONNECTIONS = env.env_int("OUTBOUND_MAX_KEEPALIVE_CONNECTIONS", 128)
OUTBOUND_MAX_RESPONSE_BYTES = env.env_int("OUTBOUND_MAX_RESPONSE_BYTES", 16 * 1024 * 1024)  # a body, or an SSE line

# Server-side tools on gateways (gateways/tools) and the model router (gateways/routing).
TOOL_RESULT_MAX_CHARS = int(env.env_str("TOOL_RESULT_MAX_CHARS", "16000"))  # what the model reads of a result
RUNNED_FUNCTION_RESULT_MAX_CHARS = 1000  # what generation_context.runned_functions shows of it
FUNCTIONS_REQUIRE_HTTPS = env.env_bool("FUNCTIONS_REQUIRE_HTTPS", True)  # HTTP functions' URLs
ROUTER_CLASSIFIER_TIMEOUT = float(env.env_str("ROUTER_CLASSIFIER_TIMEOUT", "5"))

# JSON lines with the request id on every line (aivax/log.py); LOG_FORMAT=console for people reading a terminal.
LOGGING = log.logging_config(renderer=env.env_str("LOG_FORMAT", "json"), level=env.env_str("LOG_LEVEL", "INFO"))

# /metrics (aivax/observability.py) answers a bearer METRICS_TOKEN or a client inside METRICS_ALLOWED_NETWORKS.
METRICS_TOKEN = env.env_str("METRICS_TOKEN")
METRICS_ALLOWED_NETWORKS = env.env_list("METRICS_ALLOWED_NETWORKS", [])

# The staff REST API (billing/staff_api/, at /api/staff/): tokens for scripts, sessions in the browser.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["billing.staff_api.permissions.IsBillingStaff"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "aivax staff billing API",
    "DESCRIPTION": "Organizations, balances, the ledger, billed requests, statements, credits and reversals.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["billing.staff_api.permissions.IsBillingStaff"],
}

# Metering and the ledger. Off: nothing is reserved, billed or recorded (a self-hosted install without billing).
BILLING_ENABLED = env.env_bool("BILLING_ENABLED", True)
# Prepaid credit (USD) granted to every new organization, as a ledger credit row; "0" grants nothing.
SIGNUP_CREDIT = env.env_str("SIGNUP_CREDIT", "0")

# Rate limits (quotas/): plans and per-organization/per-key limits live in the database. This one is a server-wide
# default requests-per-minute for keys that set none (0 = off). When Redis cannot be reached, admit requests
# (fail open, logged and counted) or refuse them with 503 (fail closed).
RATE_LIMIT_REQUESTS_PER_MINUTE = env.env_int("RATE_LIMIT_REQUESTS_PER_MINUTE", 0)
RATE_LIMIT_FAIL_OPEN = env.env_bool("RATE_LIMIT_FAIL_OPEN", True)
SSE_KEEPALIVE_SECONDS = float(env.env_str("SSE_KEEPALIVE_SECONDS", "10"))
# Responses API: how long a stored response (and its input) is kept for previous_response_id and GET.
RESPONSES_RETENTION_DAYS = env.env_int("RESPONSES_RETENTION_DAYS", 30)

# Request-size guards (aivax/asgi_routing.py, gateways/protocol.py): bodies are refused with 413 before they are
# read past these sizes; chat requests above the message or text caps get a 400 before any tokenizing.
MAX_REQUEST_BODY_BYTES = env.env_int("MAX_REQUEST_BODY_BYTES", 32 * 1024 * 1024)
MAX_UPLOAD_BODY_BYTES = env.env_int("MAX_UPLOAD_BODY_BYTES", 256 * 1024 * 1024)
CHAT_MAX_MESSAGES = env.env_int("CHAT_MAX_MESSAGES", 2048)
CHAT_MAX_INPUT_CHARS = env.env_int("CHAT_MAX_INPUT_CHARS", 4_000_000)
# Console sign-in and sign-up attempts (accounts/throttle.py): per client IP and per account, per window.
SIGNIN_ATTEMPTS_PER_IP = env.env_int("SIGNIN_ATTEMPTS_PER_IP", 20)
SIGNIN_ATTEMPTS_PER_ACCOUNT = env.env_int("SIGNIN_ATTEMPTS_PER_ACCOUNT", 10)
SIGNUPS_PER_IP = env.env_int("SIGNUPS_PER_IP", 10)
SIGNIN_WINDOW_SECONDS = env.env_int("SIGNIN_WINDOW_SECONDS", 300)

# Load and faults (docs/faults.md). Admission: at most this many inference requests (open streams included) in one
# web process at once; more are refused with 503 + Retry-After before anything is done for them (0 = no limit).
MAX_INFLIGHT_REQUESTS = env.env_int("MAX_INFLIGHT_REQUESTS", 4000)
# Seconds a client is told to wait (Retry-After) when a dependency is down or the process is full.
SERVICE_UNAVAILABLE_RETRY_AFTER = env.env_int("SERVICE_UNAVAILABLE_RETRY_AFTER", 2)
# Per-upstream circuit breaker: after this many consecutive failed attempts an upstream is skipped (fail fast, or
# straight to the fallback model) for UPSTREAM_CIRCUIT_OPEN_SECONDS, then one trial request decides.
UPSTREAM_CIRCUIT_FAILURES = env.env_int("UPSTREAM_CIRCUIT_FAILURES", 5)
UPSTREAM_CIRCUIT_OPEN_SECONDS = float(env.env_str("UPSTREAM_CIRCUIT_OPEN_SECONDS", "30"))
# An upstream 429's Retry-After is honoured (before the first byte) while it fits this budget; else the 429 is
# passed on to the client with its Retry-After.
UPSTREAM_RETRY_BUDGET_SECONDS = float(env.env_str("UPSTREAM_RETRY_BUDGET_SECONDS", "5"))
