"""Local development: the embedded stack, loopback upstreams allowed."""

from aivax.env import env_bool

from .base import *  # noqa: F403

DEBUG = env_bool("DEBUG", True)
