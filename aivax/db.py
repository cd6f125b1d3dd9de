"""Running ORM work from async code: on the shared thread pool, with stale connections dropped first."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections

P = ParamSpec("P")
R = TypeVar("R")


def _with_fresh_connection(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    close_old_connections()
    return func(*args, **kwargs)


async def run_db(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run a sync ORM function without pinning the request to Django's single 'sync' thread."""
    return await sync_to_async(_with_fresh_connection, thread_sensitive=False)(func, *args, **kwargs)
