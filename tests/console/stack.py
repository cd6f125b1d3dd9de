"""The real inference stack for console tests: the stub upstream (aivax.testing.stub_upstream), a priced catalog
model on it, and a funded organization, so the playground and usage pages show real streams and real bills."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest

from accounts.models import Organization
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


def priced_model(stub: StubServer, upstream_model: str) -> CatalogModel:
    model = catalog_model_upsert(
        name=f"@stub/{upstream_model}", base_url=stub.base_url, upstream_model=upstream_model, context_window=4096
    )
    for sku, price in PRICES.items():
        Price.objects.create(catalog_model=model, sku=sku, unit_price=price)
    return model


def fund(organization: Organization, amount: str = "10") -> None:
    credit_grant(organization=organization, amount=Decimal(amount), reason="test funds", staff_user=None)


@pytest.fixture(scope="session")
def stub() -> Iterator[StubServer]:
    server = StubServer().start()
    yield server
    server.stop()


@pytest.fixture
def upstream_model() -> str:
    return f"stub-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def live_gateway(org: Organization, stub: StubServer, upstream_model: str) -> Gateway:
    """A gateway of the funded organization on a priced stub model."""
    fund(org)
    return gateway_create(organization=org, name="Stub bot", catalog_model=priced_model(stub, upstream_model))
