"""One round of server-side tool calls: the model's calls to tools the gateway owns run in parallel, each under
its own timeout; every outcome, failures included, becomes a ``tool`` message for the model and an entry in
``runned_functions``. Calls to tools the gateway does not own are not touched here (they go to the client)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from aivax import crypto
from aivax.errors import ApiError
from gateways.tools.errors import ToolError
from gateways.tools.spec import HTTP, ToolSpec

logger = logging.getLogger(__name__)

Runner = Callable[[dict[str, Any]], Awaitable[str]]


@dataclass(frozen=True)
class ServerTool:
    """A tool the gateway runs: its OpenAI definition, how to run it, and how long it may take."""

    name: str
    definition: dict[str, Any]
    run: Runner
    timeout: float


def call_name(call: dict[str, Any]) -> str:
    return str((call.get("function") or {}).get("name") or "")


def owned_by_server(tools: Mapping[str, ServerTool], calls: list[dict[str, Any]]) -> bool:
    """True when every call is to a server-side tool (a round the gateway can answer by itself)."""
    return bool(calls) and all(call_name(call) in tools for call in calls)


def spec_tool(spec: ToolSpec, *, request_id: str) -> ServerTool:
    """A ServerTool for a tenant's HTTP function or MCP tool (the secret decrypted once, here)."""
    secret = crypto.decrypt(spec.secret_cipher) if spec.secret_cipher else ""
    if spec.kind == HTTP:
        from gateways.tools.http import call_http_function

        async def run(arguments: dict[str, Any]) -> str:
            return await call_http_function(spec, secret, arguments, request_id=request_id)

    else:
        from gateways.tools.mcp import call_tool

        remote_name = spec.name

        async def run(arguments: dict[str, Any]) -> str:
            return await call_tool(
                spec.url,
                remote_name,
                arguments,
                auth_header_name=spec.auth_header_name,
                auth_header_value=secret,
                timeout=spec.timeout,
            )

    return ServerTool(name=spec.name, definition=spec.definition(), run=run, timeout=spec.timeout)


def _arguments(call: dict[str, Any]) -> tuple[Any, str | None]:
    """(arguments, error): the model's arguments string parsed into an object."""
    raw = (call.get("function") or {}).get("arguments") or "{}"
    try:
        arguments = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {"raw": str(raw)[:500]}, "the arguments are not valid JSON"
    if not isinstance(arguments, dict):
        return arguments, "the arguments must be a JSON object"
    return arguments, None


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


async def _run_one(tool: ServerTool, call: dict[str, Any]) -> tuple[bool, Any, str]:
    arguments, error = _arguments(call)
    if error is not None:
        return False, arguments, f"Error: {error}."
    try:
        async with asyncio.timeout(tool.timeout):
            return True, arguments, await tool.run(arguments)
    except TimeoutError:
        return False, arguments, f"Error: the function did not answer within {tool.timeout:g} s."
    except ToolError as exc:
        return False, arguments, f"Error: {exc}"
    except ApiError:
        raise  # the request's own failure (a balance that cannot pay a paid tool): not the model's to read
    except Exception:
        logger.exception("server-side tool %s failed", tool.name)
        return False, arguments, "Error: the function failed."


async def run_tool_calls(
    tools: Mapping[str, ServerTool], calls: list[dict[str, Any]], runned: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Run the calls to `tools` in parallel; return their ``tool`` messages in the calls' order and append one
    ``{function_name, success, arguments, result}`` per call to `runned` (result clipped)."""
    owned = [call for call in calls if call_name(call) in tools]
    outcomes = await asyncio.gather(*(_run_one(tools[call_name(call)], call) for call in owned))
    messages = []
    model_limit, listed_limit = settings.TOOL_RESULT_MAX_CHARS, settings.RUNNED_FUNCTION_RESULT_MAX_CHARS
    for call, (success, arguments, result) in zip(owned, outcomes, strict=True):
        runned.append(
            {
                "function_name": call_name(call),
                "success": success,
                "arguments": arguments,
                "result": _clip(result, listed_limit),
            }
        )
        messages.append({"role": "tool", "tool_call_id": call.get("id") or "", "content": _clip(result, model_limit)})
    return messages
