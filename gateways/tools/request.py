"""The server-side tools of one request: the gateway's HTTP functions and MCP tools, plus knowledge search when
the gateway grounds with QueryFunction."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateways.tools.runtime import ServerTool, spec_tool
from gateways.tools.spec import ToolSpec

if TYPE_CHECKING:
    from gateways.grounding import Grounding
    from gateways.metering import Meter
    from gateways.resolve import GatewayConfig


def server_tools_for(config: GatewayConfig, meter: Meter, grounding: Grounding) -> dict[str, ServerTool]:
    from gateways.grounding import SEARCH_TOOL_NAME, search_server_tool

    tools = {
        spec.name: spec_tool(spec, request_id=meter.request_id)
        for spec in (ToolSpec.from_dict(data) for data in config.tools)
    }
    if grounding.tools:  # QueryFunction offers the search as a tool
        tools[SEARCH_TOOL_NAME] = search_server_tool(config, meter, grounding)
    return tools
