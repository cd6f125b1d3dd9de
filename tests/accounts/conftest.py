from tests.gateways.conftest import catalog_model, funded, gateway, stub, upstream_model  # noqa: F401  (fixtures)
