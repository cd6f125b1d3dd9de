"""The management API's gateway `parameters` for tools and the router (camelCase, AIVAX-style):

    "functions": ["get_order_status"],                       # HTTP functions, by name or id
    "mcpTools": [{"server": "Weather", "tool": "get_weather"}], # MCP servers by name or id
    "maxToolRounds": 4,
    "router": {"classifier": "@local/smollm2-135m",
               "candidates": [{"model": "@openai/gpt-4o-mini", "minComplexity": 1, "maxComplexity": 5},
                              {"endpointId": "<uuid>", "minComplexity": 6, "maxComplexity": 10}]}  # or null

A list given replaces the gateway's current one; a key left out leaves it as it is."""

from __future__ import annotations

import uuid
from typing import Any

from aivax.errors import InvalidRequest
from gateways.models import ByoEndpoint, CatalogModel, Gateway
from gateways.routing.selectors import route_candidate_list
from gateways.routing.services import CandidateIn, gateway_router_set
from gateways.tools.models import HttpFunction, McpServer
from gateways.tools.selectors import gateway_tool_list
from gateways.tools.services import gateway_tools_set

KEYS = ("functions", "mcpTools", "router")


def _by_name_or_id(model: type[Any], organization_id: int, ref: str, param: str) -> Any:
    queryset = model.objects.for_org(organization_id)
    try:
        found = queryset.filter(pk=uuid.UUID(str(ref))).first()
    except ValueError:
        found = queryset.filter(name=str(ref)).first()
    if found is None:
        raise InvalidRequest(f"Unknown {model._meta.verbose_name} '{ref}'.", param=param)
    return found


def _catalog(ref: Any, param: str) -> CatalogModel:
    model = CatalogModel.objects.filter(name=str(ref), is_active=True).first()
    if model is None:
        try:
            model = CatalogModel.objects.filter(pk=uuid.UUID(str(ref)), is_active=True).first()
        except ValueError:
            model = None
    if model is None:
        raise InvalidRequest(f"Unknown model '{ref}'. See the model catalog for the names.", param=param)
    return model


def _candidates(gateway: Gateway, raw: Any) -> list[CandidateIn]:
    if not isinstance(raw, list):
        raise InvalidRequest("'router.candidates' must be a list.", param="parameters.router.candidates")
    out = []
    for item in raw:
        if not isinstance(item, dict):
            raise InvalidRequest("Each router candidate is an object.", param="parameters.router.candidates")
        param = "parameters.router.candidates"
        try:
            low, high = int(item.get("minComplexity", 1)), int(item.get("maxComplexity", 10))
        except (TypeError, ValueError) as exc:
            raise InvalidRequest("Complexities are whole numbers from 1 to 10.", param=param) from exc
        if item.get("model"):
            out.append(
                CandidateIn(catalog_model=_catalog(item["model"], param), min_complexity=low, max_complexity=high)
            )
        elif item.get("endpointId"):
            endpoint = _by_name_or_id(ByoEndpoint, gateway.organization_id, item["endpointId"], param)
            out.append(CandidateIn(byo_endpoint=endpoint, min_complexity=low, max_complexity=high))
        else:
            raise InvalidRequest("A router candidate names a 'model' or an 'endpointId'.", param=param)
    return out


def apply(gateway: Gateway, parameters: dict[str, Any]) -> None:
    """Apply the tool and router keys of `parameters` to a saved gateway (inside the caller's transaction)."""
    organization_id = gateway.organization_id
    if "functions" in parameters or "mcpTools" in parameters:
        current = list(gateway_tool_list(gateway=gateway))
        functions = [t.http_function for t in current if t.http_function_id]
        mcp_tools = [(t.mcp_server, t.mcp_tool_name) for t in current if t.mcp_server_id]
        if "functions" in parameters:
            functions = [
                _by_name_or_id(HttpFunction, organization_id, ref, "parameters.functions")
                for ref in parameters.get("functions") or []
            ]
        if "mcpTools" in parameters:
            mcp_tools = []
            for item in parameters.get("mcpTools") or []:
                if not isinstance(item, dict) or not item.get("server") or not item.get("tool"):
                    raise InvalidRequest("Each MCP tool is {server, tool}.", param="parameters.mcpTools")
                server = _by_name_or_id(McpServer, organization_id, item["server"], "parameters.mcpTools")
                mcp_tools.append((server, str(item["tool"])))
        gateway_tools_set(gateway=gateway, http_functions=functions, mcp_tools=mcp_tools)
    if "router" in parameters:
        router = parameters["router"]
        if router is None:
            gateway_router_set(gateway=gateway, classifier=None, candidates=[])
            return
        if not isinstance(router, dict):
            raise InvalidRequest("'router' is an object or null.", param="parameters.router")
        classifier = (
            _catalog(router["classifier"], "parameters.router.classifier") if router.get("classifier") else None
        )
        candidates = _candidates(gateway, router.get("candidates") or [])
        gateway_router_set(gateway=gateway, classifier=classifier, candidates=candidates)


def out(gateway: Gateway) -> dict[str, Any]:
    """The tool and router keys of `gateway_out`'s parameters."""
    tools = list(gateway_tool_list(gateway=gateway))
    router = None
    if gateway.router_classifier_id:
        router = {
            "classifier": gateway.router_classifier.name,
            "candidates": [
                {
                    "model": row.catalog_model.name if row.catalog_model_id else None,
                    "endpointId": str(row.byo_endpoint_id) if row.byo_endpoint_id else None,
                    "minComplexity": row.min_complexity,
                    "maxComplexity": row.max_complexity,
                }
                for row in route_candidate_list(gateway=gateway)
            ],
        }
    return {
        "functions": [t.http_function.name for t in tools if t.http_function_id],
        "mcpTools": [{"server": t.mcp_server.name, "tool": t.mcp_tool_name} for t in tools if t.mcp_server_id],
        "maxToolRounds": gateway.max_tool_rounds,
        "router": router,
    }
