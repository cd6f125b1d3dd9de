"""Fixtures for inference tests: the stub upstream, a priced catalog model pointing at it, a funded organization,
a gateway, and OpenAI SDK clients aimed at our live ASGI server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal

import openai
import pytest

from aivax.testing.stub_upstream import StubServer
from billing.models import Price
from billing.services import credit_grant
from gateways.models import CatalogModel, Gateway
from gateways.services import catalog_model_upsert, gateway_create

PRICES = {
    "inference.chat_completions.in": Decimal("0.00000025"),
    "inference.chat_completions.in.cached": Decimal("0.000000025"),
    "inference.chat_completions.out": Decimal("0.000002"),
}


@pytest.fixture(scope="session")
def stub() -> Iterator[StubServer]:
    server = StubServer().start()
    yield server
    server.stop()


@pytest.fixture
def upstream_model() -> str:
    """A fresh upstream model name per test, so each test's stub script and recorded requests are its own."""
    return f"stub-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def catalog_model(stub: StubServer, upstream_model: str) -> CatalogModel:
    model = catalog_model_upsert(
        name=f"@stub/{upstream_model}",
        base_url=stub.base_url,
        upstream_model=upstream_model,
        api_key="sk-platform-secret",
        context_window=4096,
    )
    for sku, price in PRICES.items():
        Price.objects.create(catalog_model=model, sku=sku, unit_price=price)
    return model


@pytest.fixture
def funded(org, owner):
    credit_grant(organization=org, amount=Decimal("10"), reason="test funds", staff_user=None)
    return org


@pytest.fixture
def gateway(funded, catalog_model: CatalogModel) -> Gateway:
    return gateway_create(organization=funded, name="Support Bot", catalog_model=catalog_model)


@pytest.fixture
def client(live_asgi, api_key) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_asgi.url}/api/v1", api_key=api_key.raw, max_retries=0, timeout=20)


@pytest.fixture
def aclient(live_asgi, api_key) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{live_asgi.url}/api/v1", api_key=api_key.raw, max_retries=0, timeout=20)


@pytest.fixture(scope="session")
def mcp_server():  # type: ignore[no-untyped-def]
    from tests.gateways.tool_servers import McpTestServer

    server = McpTestServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def function_server():  # type: ignore[no-untyped-def]
    from tests.gateways.tool_servers import FunctionTestServer

    server = FunctionTestServer()
    server.start()
    yield server
    server.stop()
