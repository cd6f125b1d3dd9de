"""Ops tests reuse the inference fixtures (stub upstream, priced catalog model, funded gateway) and the billing
ones (billing staff, a funded organization, platform prices)."""

from tests.billing.conftest import billing_staff, funded_org, platform_prices  # noqa: F401
from tests.gateways.conftest import catalog_model, funded, gateway, stub, upstream_model  # noqa: F401
