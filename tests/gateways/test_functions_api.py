"""Management of server-side tools and the router: /api/v1/functions, /api/v1/mcp-servers and the gateway's
`functions`, `mcpTools`, `maxToolRounds` and `router` parameters; tenancy; the outbound guard."""

from __future__ import annotations

import httpx
import pytest

from gateways.models import CatalogModel
from gateways.resolve import load_config
from gateways.services import catalog_model_upsert
from gateways.tools.models import HttpFunction, McpServer
from tests.gateways.tool_servers import MCP_TOKEN

pytestmark = pytest.mark.django_db(transaction=True)


def _admin(live_asgi, key) -> httpx.Client:  # type: ignore[no-untyped-def]
    return httpx.Client(base_url=f"{live_asgi.url}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=20)


@pytest.fixture
def admin(live_asgi, api_key) -> httpx.Client:  # type: ignore[no-untyped-def]
    return _admin(live_asgi, api_key.raw)


@pytest.fixture
def outsider_admin(live_asgi, outsider_key) -> httpx.Client:  # type: ignore[no-untyped-def]
    return _admin(live_asgi, outsider_key.raw)


def _function(admin: httpx.Client, function_server, name: str = "lookup") -> dict:  # type: ignore[no-untyped-def]
    response = admin.post(
        "/functions",
        json={
            "name": name,
            "url": f"{function_server.base_url}/{name}",
            "description": "Order status by id",
            "parameters": {"type": "object", "properties": {"order_id": {"type": "integer"}}},
            "timeoutSeconds": 3,
        },
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]


def _server(admin: httpx.Client, mcp_server) -> dict:  # type: ignore[no-untyped-def]
    response = admin.post("/mcp-servers", json={"name": "Weather", "url": mcp_server.url, "authHeaderValue": MCP_TOKEN})
    assert response.status_code == 201, response.text
    return response.json()["data"]


def test_functions_and_servers_are_managed_and_attached(admin, funded, catalog_model, function_server, mcp_server):
    function = _function(admin, function_server)
    assert function["secret"].startswith("whsec_")
    assert "secret" not in admin.get(f"/functions/{function['id']}").json()["data"]  # shown once
    server = _server(admin, mcp_server)
    assert server["authHeaderValue"] == "(set)" and MCP_TOKEN not in str(server)
    assert {"get_weather", "add"} <= {t["name"] for t in server["tools"]}

    created = admin.post(
        "/ai-gateways",
        json={
            "name": "Agent",
            "parameters": {
                "model": catalog_model.name,
                "functions": ["lookup"],
                "mcpTools": [{"server": "Weather", "tool": "get_weather"}],
                "maxToolRounds": 3,
            },
        },
    )
    assert created.status_code == 201, created.text
    params = created.json()["data"]["parameters"]
    assert params["functions"] == ["lookup"]
    assert params["mcpTools"] == [{"server": "Weather", "tool": "get_weather"}]
    assert params["maxToolRounds"] == 3 and params["router"] is None

    config = load_config(funded.pk, created.json()["data"]["id"])
    assert {t["name"] for t in config.tools} == {"lookup", "get_weather"}
    assert MCP_TOKEN not in config.to_json()  # secrets stay encrypted in the cached configuration
    assert config.max_tool_rounds == 3

    gateway_id = created.json()["data"]["id"]
    patched = admin.patch(f"/ai-gateways/{gateway_id}", json={"parameters": {"functions": []}})
    assert patched.json()["data"]["parameters"]["functions"] == []
    assert patched.json()["data"]["parameters"]["mcpTools"] == [{"server": "Weather", "tool": "get_weather"}]

    rotated = admin.patch(f"/functions/{function['id']}", json={"rotateSecret": True}).json()["data"]
    assert rotated["secret"] != function["secret"]
    assert admin.delete(f"/mcp-servers/{server['id']}").status_code == 200
    assert admin.get(f"/ai-gateways/{gateway_id}").json()["data"]["parameters"]["mcpTools"] == []


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"name": "bad name!", "url": "http://127.0.0.1:1/x"}, "name"),
        ({"name": "search_knowledge_base", "url": "http://127.0.0.1:1/x"}, "name"),
        ({"name": "f", "url": "ftp://example.com/x"}, "url"),
        ({"name": "f", "url": "http://127.0.0.1:1/x", "parameters": {"type": "array"}}, "parameters"),
        ({"name": "f", "url": "http://127.0.0.1:1/x", "timeoutSeconds": 0}, "timeout_seconds"),
    ],
)
def test_bad_functions_are_clear_errors(admin, body, param) -> None:
    response = admin.post("/functions", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_gateway_tool_errors(admin, funded, catalog_model, function_server, mcp_server) -> None:
    _function(admin, function_server)
    _server(admin, mcp_server)
    cases = [
        ({"functions": ["nope"]}, "parameters.functions"),
        ({"mcpTools": [{"server": "Weather", "tool": "not_listed"}]}, "mcpTools"),
        ({"mcpTools": [{"server": "Weather"}]}, "parameters.mcpTools"),
        ({"maxToolRounds": 0}, None),
        ({"router": {"candidates": [{"model": catalog_model.name}]}}, "router.classifier"),
        (
            {
                "router": {
                    "classifier": catalog_model.name,
                    "candidates": [{"model": catalog_model.name, "minComplexity": 7, "maxComplexity": 3}],
                }
            },
            "router",
        ),
    ]
    for extra, param in cases:
        response = admin.post("/ai-gateways", json={"name": "x", "parameters": {"model": catalog_model.name, **extra}})
        assert response.status_code in (400, 422), (extra, response.text)
        if param:
            assert response.json()["error"]["param"] == param, extra
    assert admin.get("/ai-gateways").json()["data"] == []  # nothing half-created


def test_router_parameters_round_trip(admin, funded, catalog_model, stub) -> None:
    big = catalog_model_upsert(name="@stub/big-router", base_url=stub.base_url, upstream_model="big-router")
    created = admin.post(
        "/ai-gateways",
        json={
            "name": "Routed",
            "parameters": {
                "model": catalog_model.name,
                "router": {
                    "classifier": catalog_model.name,
                    "candidates": [
                        {"model": catalog_model.name, "minComplexity": 1, "maxComplexity": 5},
                        {"model": big.name, "minComplexity": 6, "maxComplexity": 10},
                    ],
                },
            },
        },
    )
    assert created.status_code == 201, created.text
    router = created.json()["data"]["parameters"]["router"]
    assert router["classifier"] == catalog_model.name
    assert [(c["model"], c["minComplexity"], c["maxComplexity"]) for c in router["candidates"]] == [
        (catalog_model.name, 1, 5),
        (big.name, 6, 10),
    ]
    config = load_config(funded.pk, created.json()["data"]["id"])
    assert config.router is not None and len(config.router["candidates"]) == 2
    off = admin.patch(f"/ai-gateways/{created.json()['data']['id']}", json={"parameters": {"router": None}})
    assert off.json()["data"]["parameters"]["router"] is None
    CatalogModel.objects.filter(pk=big.pk).delete()


def test_another_tenants_tools_are_404(admin, outsider_admin, funded, function_server, mcp_server) -> None:
    function = _function(admin, function_server)
    server = _server(admin, mcp_server)
    assert outsider_admin.get(f"/functions/{function['id']}").status_code == 404
    assert outsider_admin.delete(f"/mcp-servers/{server['id']}").status_code == 404
    assert outsider_admin.get("/functions").json()["data"] == []
    response = outsider_admin.post(
        "/ai-gateways",
        json={
            "name": "x",
            "parameters": {"baseAddress": "http://127.0.0.1:1/v1", "modelName": "m", "functions": [function["id"]]},
        },
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "parameters.functions"
    assert HttpFunction.unscoped.count() == 1 and McpServer.unscoped.count() == 1


def test_private_addresses_are_refused_in_production(admin, settings, mcp_server) -> None:
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    settings.FUNCTIONS_REQUIRE_HTTPS = True
    response = admin.post("/mcp-servers", json={"name": "Internal", "url": mcp_server.url})
    assert response.status_code == 400 and response.json()["error"]["param"] == "url"
    assert "private" in response.json()["error"]["message"]
    for url in ("http://example.com/hook", "https://10.0.0.8/hook", "https://169.254.169.254/latest"):
        response = admin.post("/functions", json={"name": "f", "url": url})
        assert response.status_code == 400 and response.json()["error"]["param"] == "url", url
    assert McpServer.unscoped.count() == 0 and HttpFunction.unscoped.count() == 0
