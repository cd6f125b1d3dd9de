"""Property-based fuzzing of every /api/v1 operation (schemathesis, driven by our OpenAPI document) against the live
ASGI server: whatever a client sends, the answer is never a 5xx, and every error is an OpenAI error object.

Examples are bounded (FUZZ_EXAMPLES per operation, derandomized so CI runs are repeatable) to keep the job near a
minute on 2 cores. Half the cases get the ids of real objects in their path and body, so the fuzzer reaches the
code behind the 404s too.
"""

from __future__ import annotations

import os
import zlib
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from aivax.testing.stub_upstream import StubServer
from gateways.services import catalog_model_upsert, gateway_create
from knowledge.services import collection_create, document_upsert

pytestmark = pytest.mark.django_db(transaction=True)
FUZZ_EXAMPLES = int(os.environ.get("AIVAX_FUZZ_EXAMPLES", "20"))


@pytest.fixture(scope="session")
def fuzz_stub() -> Any:
    server = StubServer().start()
    yield server
    server.stop()


@pytest.fixture
def real_ids(org, fuzz_stub) -> dict[str, str]:
    model = catalog_model_upsert(
        name="@stub/fuzz", base_url=fuzz_stub.base_url, upstream_model="fuzz", api_key="sk-x", context_window=4096
    )
    gateway = gateway_create(organization=org, name="Fuzzed", catalog_model=model)
    collection = collection_create(organization=org, name="Fuzzed docs")
    document = document_upsert(collection=collection, name="a.txt", contents="hello world").document
    return {
        "gateway_id": str(gateway.pk),
        "model_id": gateway.slug,
        "model": gateway.slug,
        "collection_id": str(collection.pk),
        "document_id": str(document.pk),
    }


def _load_schema() -> Any:
    # The document the live server publishes at /api/v1/openapi.json, built in-process at collection time.
    from aivax.api import api

    return schemathesis.openapi.from_dict(api.get_openapi_schema(path_prefix="/api/v1"))


schema = _load_schema()


def _use_real_ids(case: Any, ids: dict[str, str]) -> None:
    if zlib.crc32(repr((case.path_parameters, case.query, case.body)).encode()) % 2:
        return
    for name in case.path_parameters or {}:
        if name in ids:
            case.path_parameters[name] = ids[name]
    if isinstance(case.body, dict) and "model" in case.body:
        case.body["model"] = ids["model"]


@schema.parametrize()
@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors_and_every_error_is_an_error_object(case, live_asgi, api_key, real_ids):
    _use_real_ids(case, real_ids)
    response = case.call(base_url=live_asgi.url, headers={"Authorization": f"Bearer {api_key.raw}"}, timeout=30)
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
    if response.status_code >= 400:
        assert response.headers.get("content-type", [""])[0].startswith("application/json"), response.text[:300]
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}, error
        assert isinstance(error["message"], str) and error["message"]
