"""The per-process admission limit: over MAX_INFLIGHT_REQUESTS, a request is refused with 503 + Retry-After before
the application sees it; a finished request (a closed stream) frees its place."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from django.test import override_settings

from aivax.admission import AdmissionLimit


def test_admission_limit_sheds_with_503_and_frees_places() -> None:
    release = asyncio.Event()
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["path"])
        await release.wait()  # an open stream
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    limited = AdmissionLimit(app)

    async def call(path: str) -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await limited({"type": "http", "path": path}, None, send)
        return sent

    async def scenario() -> None:
        first = asyncio.ensure_future(call("/api/v1/one"))
        second = asyncio.ensure_future(call("/api/v1/two"))
        await asyncio.sleep(0.05)
        refused = await call("/api/v1/three")
        assert refused[0]["status"] == 503
        headers = dict(refused[0]["headers"])
        assert headers[b"retry-after"] and json.loads(refused[1]["body"])["error"]["code"] == "service_unavailable"
        assert seen == ["/api/v1/one", "/api/v1/two"]  # the refused request never reached the application
        release.set()
        assert (await first)[0]["status"] == 200 and (await second)[0]["status"] == 200
        assert (await call("/api/v1/four"))[0]["status"] == 200
        assert limited.inflight == 0

    with override_settings(MAX_INFLIGHT_REQUESTS=2):
        asyncio.run(scenario())
