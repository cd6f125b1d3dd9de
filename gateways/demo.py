"""The demo gateway for `manage.py seed_demo`: the local SmolLM2 model in the catalog, a gateway on it, and
some prepaid credit so the first requests are billed like real ones."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from accounts.models import Organization
from billing.models import Price
from billing.selectors import account_get
from billing.services import credit_grant
from gateways.models import Gateway
from gateways.services import catalog_model_upsert, gateway_create

LOCAL_MODEL_NAME = "@local/smollm2-135m"
DEMO_GATEWAY_NAME = "Demo assistant"
# What running the local model "costs" in the demo: small, non-zero, so billing lines are visible.
DEMO_PRICES = {
    "inference.chat_completions.in": Decimal("0.0000001"),
    "inference.chat_completions.in.cached": Decimal("0.00000001"),
    "inference.chat_completions.out": Decimal("0.0000004"),
    # The demo gateway's router rates messages with the same local model.
    "inference.resolving.routing_complexity.in": Decimal("0.00000005"),
    "inference.resolving.routing_complexity.out": Decimal("0.0000002"),
}
DEMO_CREDIT = Decimal("5.00")
# Platform-wide knowledge prices (per token), unless an operator has set their own.
DEMO_PLATFORM_PRICES = {
    "knowledge.embedding": Decimal("0.00000002"),
    "knowledge.search": Decimal("0.00000002"),
}


def seed_demo_gateway(*, organization: Organization, local_model_url: str, **_: Any) -> str | None:
    for sku, price in DEMO_PLATFORM_PRICES.items():
        if not Price.objects.filter(catalog_model__isnull=True, sku=sku).exists():
            Price.objects.create(catalog_model=None, sku=sku, unit_price=price)
    # Top the demo balance up to DEMO_CREDIT (the README's promise), whatever the sign-up credit gave it.
    balance = account_get(organization_id=organization.pk).balance
    if balance < DEMO_CREDIT:
        credit_grant(organization=organization, amount=DEMO_CREDIT - balance, reason="demo credit", staff_user=None)
    if not local_model_url:
        existing = Gateway.objects.for_org(organization).filter(name=DEMO_GATEWAY_NAME).first()
        return existing.slug if existing else None
    model = catalog_model_upsert(
        name=LOCAL_MODEL_NAME,
        base_url=local_model_url,
        upstream_model="smollm2-135m",
        context_window=2048,
        capabilities=["chat"],
        description="SmolLM2-135M-Instruct (GGUF, llama.cpp) running on this machine.",
    )
    for sku, price in DEMO_PRICES.items():
        if not Price.objects.filter(catalog_model=model, sku=sku).exists():
            Price.objects.create(catalog_model=model, sku=sku, unit_price=price)
    gateway = Gateway.objects.for_org(organization).filter(name=DEMO_GATEWAY_NAME).first()
    if gateway is None:
        gateway = gateway_create(
            organization=organization,
            name=DEMO_GATEWAY_NAME,
            catalog_model=model,
            system_instruction="You are a friendly, concise assistant.",
            temperature=0.3,
            max_completion_tokens=200,
        )
    return gateway.slug
