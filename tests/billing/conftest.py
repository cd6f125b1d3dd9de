"""Billing fixtures: a priced catalog model, platform prices, a billing staff member, and a funded organization."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from accounts.models import Organization, User
from accounts.services import user_create
from billing import skus
from billing.models import Price
from billing.pricing import invalidate_price_cache
from billing.services import credit_grant
from gateways.models import CatalogModel

# gpt-4o-mini-like list prices, per token.
PRICE_IN = Decimal("0.00000015")
PRICE_IN_CACHED = Decimal("0.000000075")
PRICE_OUT = Decimal("0.0000006")
PRICE_SEARCH = Decimal("0.0005")
PRICE_EMBEDDING = Decimal("0.00000002")


@pytest.fixture(autouse=True)
def _fresh_price_cache() -> Iterator[None]:
    # Prices live in an in-process cache; rolled-back rows must not leak from one test into the next.
    invalidate_price_cache()
    yield
    invalidate_price_cache()


@pytest.fixture
def catalog_model(db: None) -> CatalogModel:
    model = CatalogModel.objects.create(
        name="@openai/gpt-4o-mini", base_url="https://api.openai.com/v1", upstream_model="gpt-4o-mini"
    )
    since = timezone.now() - timedelta(days=30)
    for sku, price in ((skus.CHAT_IN, PRICE_IN), (skus.CHAT_IN_CACHED, PRICE_IN_CACHED), (skus.CHAT_OUT, PRICE_OUT)):
        Price.objects.create(catalog_model=model, sku=sku, unit_price=price, effective_from=since)
    return model


@pytest.fixture
def platform_prices(db: None) -> None:
    since = timezone.now() - timedelta(days=30)
    Price.objects.create(sku=skus.KNOWLEDGE_SEARCH, unit_price=PRICE_SEARCH, effective_from=since)
    Price.objects.create(sku=skus.KNOWLEDGE_EMBEDDING, unit_price=PRICE_EMBEDDING, effective_from=since)


@pytest.fixture
def billing_staff(db: None) -> User:
    user = user_create(email="ledger@aivax.test", password="pw-ledger-123!")
    user.user_permissions.add(Permission.objects.get(codename="view_all_usage", content_type__app_label="accounts"))
    return User.objects.get(pk=user.pk)  # fresh: permissions are cached on the instance


@pytest.fixture
def funded_org(org: Organization, billing_staff: User) -> Organization:
    credit_grant(organization=org, amount=Decimal("10"), reason="test funds", staff_user=billing_staff)
    return org
