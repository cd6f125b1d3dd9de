"""Ops tests reuse the inference fixtures (stub upstream, priced catalog model, funded gateway)."""

from tests.gateways.conftest import catalog_model, funded, gateway, stub, upstream_model  # noqa: F401
