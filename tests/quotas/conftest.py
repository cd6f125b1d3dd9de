"""Quota fixtures: the gateway fixtures (stub upstream, funded organization, gateway), the default plan (a
transactional test's flush removes the row the data migration made), and helpers to set a limit at a level."""

from __future__ import annotations

import uuid

import httpx
import pytest

from accounts.models import ApiKey, Organization
from quotas.models import Plan
from tests.gateways.conftest import catalog_model, funded, gateway, stub, upstream_model  # noqa: F401  (fixtures)
from tests.knowledge.conftest import api, funded_org, knowledge_prices  # noqa: F401  (fixtures)

DEFAULT_TOKENS_PER_MINUTE = 1_000_000


@pytest.fixture
def default_plan(db: None) -> Plan:
    plan, _ = Plan.objects.update_or_create(
        is_default=True,
        defaults={
            "name": "Default",
            "requests_per_minute": 600,
            "requests_per_day": 100_000,
            "tokens_per_minute": DEFAULT_TOKENS_PER_MINUTE,
            "documents_per_minute": 2_000,
            "documents_per_day": 100_000,
        },
    )
    return plan


def set_limit(level: str, field: str, amount: int, *, key: ApiKey, organization: Organization) -> None:
    """`field` (e.g. requests_per_minute) = amount at `level`; saved the way staff and services save them."""
    if level == "key":
        setattr(key, field, amount)
        key.save()
    elif level == "organization":
        setattr(organization, field, amount)
        organization.save()
    else:
        organization.plan = Plan.objects.create(name=f"Tier {uuid.uuid4().hex[:6]}", **{field: amount})
        organization.save()


def post_chat(live_asgi, raw_key: str, body: dict, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{live_asgi.url}/api/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {raw_key}", **headers},
        timeout=20,
    )
