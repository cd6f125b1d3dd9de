"""Unauthenticated probes: /healthz says the process is up, /readyz that its database and Redis answer."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse


async def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_redis() -> None:
    cache.get("readyz-probe")


async def readyz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, str] = {}
    for name, probe in (("database", _check_database), ("redis", _check_redis)):
        try:
            await sync_to_async(probe, thread_sensitive=True)()
            checks[name] = "ok"
        except Exception as exc:  # a probe reports, it does not crash
            checks[name] = f"error: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)
