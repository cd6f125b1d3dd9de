"""Admission control: at most MAX_INFLIGHT_REQUESTS API requests (open streams included) in one web process.

A request over the limit is answered at once with 503 + Retry-After, in the OpenAI error shape, before Django
sees it: nothing was authenticated, reserved, sent upstream or billed, so the client may simply retry. A request
counts from its first byte until its response (a stream to its last event) is finished, so a process full of
long streams refuses new work instead of queueing it behind them until every pool times out.
"""

from __future__ import annotations

import json

from django.conf import settings

from aivax import outage
from aivax.asgi_types import App, Receive, Scope, Send

_BODY = json.dumps(
    {
        "error": {
            "message": "The server is at capacity right now. Nothing was billed; retry shortly.",
            "type": "api_error",
            "param": None,
            "code": "service_unavailable",
        }
    }
).encode()


class AdmissionLimit:
    """ASGI wrapper counting in-flight requests of this process (one event loop: a plain counter is enough)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.inflight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = int(settings.MAX_INFLIGHT_REQUESTS)
        if limit > 0 and self.inflight >= limit:
            outage.count("admission.refused")
            await _refuse(send)
            return
        self.inflight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight -= 1


async def _refuse(send: Send) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(_BODY)).encode()),
        (b"retry-after", outage.retry_after().encode()),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": _BODY})
