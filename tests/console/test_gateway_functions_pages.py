"""The gateway form's server-side tools and model router sections."""

from __future__ import annotations

import pytest
from django.test import Client

from gateways.models import CatalogModel, Gateway
from gateways.routing.selectors import route_candidate_list
from gateways.tools.models import HttpFunction, McpServer
from gateways.tools.selectors import gateway_tool_list
from tests.console.test_gateways_pages import FULL


@pytest.fixture
def tools(org) -> tuple[HttpFunction, McpServer]:  # type: ignore[no-untyped-def]
    function = HttpFunction.unscoped.create(organization=org, name="lookup", url="https://example.com/x", secret="s")
    server = McpServer.unscoped.create(
        organization=org,
        name="Weather",
        url="https://example.com/mcp",
        tools=[{"name": "get_weather", "description": "", "inputSchema": {"type": "object"}}],
    )
    return function, server


def test_attach_tools_and_configure_the_router(as_dev: Client, org, catalog_model, tools) -> None:
    function, server = tools
    big = CatalogModel.objects.create(name="@stub/big", base_url="http://127.0.0.1:9/v1", upstream_model="big")
    page = as_dev.get("/console/gateways/new").content.decode()
    assert "lookup (HTTP)" in page and "get_weather (Weather, MCP)" in page
    data = {
        **FULL,
        "model": f"catalog:{catalog_model.pk}",
        "server_tools": [f"fn:{function.pk}", f"mcp:{server.pk}:get_weather"],
        "max_tool_rounds": "2",
        "router_classifier": catalog_model.name,
        "router_candidates": f"{catalog_model.name} 1-4\n{big.name} 5-10\n",
    }
    response = as_dev.post("/console/gateways/new", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    gateway = Gateway.objects.for_org(org).get()
    assert gateway.max_tool_rounds == 2 and gateway.router_classifier == catalog_model
    assert sorted(str(t) for t in gateway_tool_list(gateway=gateway)) == ["get_weather", "lookup"]
    assert [(c.catalog_model, c.min_complexity, c.max_complexity) for c in route_candidate_list(gateway=gateway)] == [
        (catalog_model, 1, 4),
        (big, 5, 10),
    ]
    edit = as_dev.get(f"/console/gateways/{gateway.pk}/edit").content.decode()
    assert f"{big.name} 5-10" in edit and "checked" in edit


def test_router_errors_show_on_the_field_and_save_nothing(as_dev: Client, org, catalog_model) -> None:
    data = {
        **FULL,
        "model": f"catalog:{catalog_model.pk}",
        "router_classifier": catalog_model.name,
        "router_candidates": "@nope/model 1-4",
    }
    response = as_dev.post("/console/gateways/new", data)
    assert response.status_code == 400
    assert 'id="id_router_candidates_error"' in response.content.decode()
    assert "unknown model" in response.content.decode()
    assert not Gateway.objects.for_org(org).exists()  # the gateway and its router are one transaction
