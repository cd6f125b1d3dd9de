"""HTTP functions: the model's arguments, POSTed as JSON to the tenant's URL and signed (gateways.tools.signing).

The request carries ``X-Aivax-Function`` (the name) and ``X-Aivax-Request-Id``; the response body (up to
``TOOL_RESULT_MAX_CHARS``) is the result the model reads. A non-2xx answer, a refused address or a network error
is a `ToolError`: the model sees it as the tool's result and can say so. The URL goes through the same outbound
guard as tenants' model endpoints (checked when saved and at every connect)."""

from __future__ import annotations

from typing import Any

import httpx
from django.conf import settings

from aivax import outbound
from gateways import protocol
from gateways.tools import signing
from gateways.tools.errors import ToolError
from gateways.tools.spec import ToolSpec


async def call_http_function(spec: ToolSpec, secret: str, arguments: dict[str, Any], *, request_id: str) -> str:
    body = protocol.dumps(arguments)
    headers = {
        "Content-Type": "application/json",
        signing.HEADER: signing.sign(secret, body),
        "X-Aivax-Function": spec.name,
        "X-Aivax-Request-Id": request_id,
        "User-Agent": "aivax-functions/1",
    }
    limit = settings.TOOL_RESULT_MAX_CHARS
    try:
        async with outbound.shared_async_client(outbound.Policy.TENANT).stream(
            "POST", spec.url, content=body, headers=headers, timeout=spec.timeout
        ) as response:
            raw = b""
            async for chunk in response.aiter_bytes():
                raw += chunk
                if len(raw) > limit * 4:  # enough bytes for `limit` characters of any UTF-8
                    break
    except httpx.TimeoutException as exc:
        raise ToolError(f"the function did not answer within {spec.timeout:g} s") from exc
    except httpx.HTTPError as exc:
        raise ToolError("the function's URL could not be reached") from exc
    text = raw.decode("utf-8", errors="replace")[:limit]
    if not 200 <= response.status_code < 300:
        raise ToolError(f"the function answered HTTP {response.status_code}: {text[:300]}")
    return text
