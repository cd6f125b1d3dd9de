"""Seed the fault stack's database (run in a subprocess against it): an organization with credit, an API key,
priced stub models and gateways. Prints what the tests need as JSON."""

from __future__ import annotations

import json
import sys
from decimal import Decimal


def main(stub_base_url: str) -> None:
    import django

    django.setup()
    from accounts.models import Scope
    from accounts.services import api_key_create, organization_create, user_create
    from billing.models import Price
    from billing.services import credit_grant
    from gateways.services import catalog_model_upsert, gateway_create

    prices = {
        "inference.chat_completions.in": Decimal("0.00000025"),
        "inference.chat_completions.in.cached": Decimal("0.000000025"),
        "inference.chat_completions.out": Decimal("0.000002"),
    }

    def model(name: str, base_url: str = stub_base_url):
        catalog = catalog_model_upsert(
            name=f"@stub/{name}", base_url=base_url, upstream_model=name, context_window=4096
        )
        for sku, price in prices.items():
            Price.objects.create(catalog_model=catalog, sku=sku, unit_price=price)
        return catalog

    Price.objects.create(catalog_model=None, sku="knowledge.embedding", unit_price=Decimal("0.00000002"))
    owner = user_create(email="owner@faults.test", password="pw-owner-123!")
    org = organization_create(name="Faults", owner=owner)
    from quotas.models import Plan  # the suite's traffic is heavy: rate limits are not what it tests

    org.plan = Plan.objects.create(
        name="Faults", requests_per_minute=10**9, requests_per_day=10**9, tokens_per_minute=10**9
    )
    org.save()
    credit_grant(organization=org, amount=Decimal("100"), reason="fault tests", staff_user=None)
    key = api_key_create(organization=org, name="faults", scopes=list(Scope.values), created_by=owner)
    gateways = {}
    for name in ("steady", "flaky", "limited", "cut", "stall", "breaker"):
        gateways[name] = gateway_create(organization=org, name=name, catalog_model=model(name)).slug
    fallback = model("fallback")
    gateways["with_fallback"] = gateway_create(
        organization=org, name="with fallback", catalog_model=model("primary"), fallback_model_ids=[fallback.pk]
    ).slug
    # TLS spoken to a plain-HTTP port: the handshake fails.
    tls = model("tls", base_url=stub_base_url.replace("http://", "https://"))
    gateways["tls"] = gateway_create(organization=org, name="tls", catalog_model=tls).slug
    print(json.dumps({"key": key.raw, "gateways": gateways, "organization_id": org.pk}))


if __name__ == "__main__":
    main(sys.argv[1])
