"""Local development: the embedded stack, loopback upstreams allowed."""

from aivax.env import env_bool, env_str

from .base import *  # noqa: F403

DEBUG = env_bool("DEBUG", True)

# In development every new organization gets a little credit, so sign-up leads straight to a working playground.
SIGNUP_CREDIT = env_str("SIGNUP_CREDIT", "1.00")
