"""Local development: the embedded stack, loopback upstreams allowed."""

from aivax.env import env_bool, env_list, env_str

from .base import *  # noqa: F403
from .base import LOGGING

DEBUG = env_bool("DEBUG", True)
# Tenants' endpoints may reach this machine (a model served on localhost); never metadata or link-local addresses.
OUTBOUND_ALLOW_LOOPBACK = env_bool("OUTBOUND_ALLOW_LOOPBACK", True)

# In development every new organization gets a little credit, so sign-up leads straight to a working playground.
SIGNUP_CREDIT = env_str("SIGNUP_CREDIT", "1.00")

# A terminal reads key=value lines better than JSON; /metrics answers this machine without a token.
LOGGING["formatters"]["structured"]["renderer"] = env_str("LOG_FORMAT", "console")
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", ["127.0.0.1/32", "::1/128"])
FUNCTIONS_REQUIRE_HTTPS = False  # local function servers on http during development
