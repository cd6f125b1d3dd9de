from tests.gateways.conftest import catalog_model, stub, upstream_model  # noqa: F401  (fixtures)
