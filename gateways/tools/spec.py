"""What the inference path knows about a gateway's tools: plain data, cached with the gateway's configuration
(secrets stay encrypted in the cache, like upstream keys) and decrypted once per request."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

HTTP = "http"
MCP = "mcp"


@dataclass(frozen=True)
class ToolSpec:
    kind: str  # HTTP or MCP
    name: str  # what the model calls
    description: str
    parameters: dict[str, Any]
    url: str
    timeout: float
    secret_cipher: str = ""  # HTTP: the signing secret; MCP: the auth header's value
    auth_header_name: str = ""  # MCP only
    server_name: str = ""  # MCP only, for messages

    def definition(self) -> dict[str, Any]:
        """The OpenAI `tools` entry offered to the model."""
        parameters = self.parameters if isinstance(self.parameters, dict) and self.parameters else {}
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": parameters or {"type": "object", "properties": {}},
            },
        }

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ToolSpec:
        return cls(**data)
