"""A Django ASGI handler for the API with its own (empty by default) middleware list, and start-up warming."""

from __future__ import annotations

import threading

from django.conf import settings
from django.core.handlers.asgi import ASGIHandler


class ApiASGIHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        # BaseHandler reads settings.MIDDLEWARE; swap in API_MIDDLEWARE for the duration of this one-time load.
        original = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.API_MIDDLEWARE
        try:
            super().load_middleware(is_async=is_async)
        finally:
            settings.MIDDLEWARE = original


def warm_up() -> None:
    """Load the tokenizer now, in the background, instead of inside the first request (about a second)."""

    def _load() -> None:
        from aivax import tokens

        tokens.count_text("warm up")

    threading.Thread(target=_load, name="aivax-warm-up", daemon=True).start()
