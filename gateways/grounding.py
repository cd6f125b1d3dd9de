"""Grounding a chat in the gateway's knowledge collection (see knowledge.retrieval for the search itself)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateways.protocol import ChatCompletionRequest
from gateways.resolve import GatewayConfig

if TYPE_CHECKING:
    from gateways.metering import Meter


@dataclass
class Grounding:
    text: str | None = None
    documents: list[dict[str, Any]] = field(default_factory=list)
    annotations: list[dict[str, Any]] = field(default_factory=list)
    runned_functions: list[dict[str, Any]] = field(default_factory=list)
    tools: list[dict[str, Any]] = field(default_factory=list)


async def aground(config: GatewayConfig, request: ChatCompletionRequest, meter: Meter) -> Grounding:
    if not config.knowledge_collection_id:
        return Grounding()
    raise NotImplementedError("knowledge grounding arrives with the knowledge app")
