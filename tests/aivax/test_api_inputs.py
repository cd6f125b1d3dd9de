"""Bad input on the management, knowledge and billing APIs: a 400 error object naming the parameter, never a
500. Each case crashed with a database or parser error before its fix. (Cases are grouped in loops: every test
here needs a committed database for the live server, and each test costs a flush.)"""

from __future__ import annotations

import json

import httpx
import pytest

from knowledge import parsing
from tests.gateways.conftest import catalog_model, stub, upstream_model  # noqa: F401  (shared fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


class Client:
    def __init__(self, url: str, key: str) -> None:
        self.http = httpx.Client(base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=30)

    def call(self, method: str, path: str, **kwargs) -> tuple[int, dict]:
        response = self.http.request(method, path, **kwargs)
        assert response.headers["content-type"].startswith("application/json"), (path, response.text[:300])
        return response.status_code, response.json()


@pytest.fixture
def client(live_asgi, api_key) -> Client:
    return Client(live_asgi.url, api_key.raw)


@pytest.fixture
def collection_id(client: Client) -> str:
    status, body = client.call("POST", "/collections", json={"collectionName": "Docs"})
    assert status == 201, body
    return body["data"]["id"]


def _param(status: int, body: dict, expected_status: int = 400) -> str | None:
    assert status == expected_status, body
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]["param"]


def test_gateway_parameters_out_of_range_are_400(client: Client, catalog_model) -> None:  # noqa: F811
    status, body = client.call("POST", "/ai-gateways", json={"name": "G", "parameters": {"model": catalog_model.name}})
    assert status == 201, body
    gateway_id = body["data"]["id"]
    cases = [
        ({"systemInstruction": None}, "parameters.systemInstruction"),
        ({"isActive": None}, "parameters.isActive"),
        ({"maxCompletionTokens": 2**40}, "parameters.maxCompletionTokens"),
        ({"seed": 2**70}, "parameters.seed"),
        ({"contextMaximumSize": 2**31}, "parameters.contextMaximumSize"),
        ({"knowledgeBaseMaximumResults": 40_000}, "parameters.knowledgeBaseMaximumResults"),
        ({"stop": ["x" * 101]}, "parameters.stop[0]"),
        ({"temperature": "NaN"}, "parameters.temperature"),
        ({"baseAddress": "http://[::1", "modelName": "m"}, "parameters.baseAddress"),
        ({"baseAddress": "http://example.com:70000/v1", "modelName": "m"}, "parameters.baseAddress"),
        ({"modelName": "m\x00"}, "parameters.modelName"),
    ]
    for parameters, param in cases:
        status, body = client.call("PATCH", f"/ai-gateways/{gateway_id}", json={"parameters": parameters})
        assert _param(status, body) == param, parameters


def test_collection_fields_are_validated(client: Client) -> None:
    cases = [
        ({"collectionName": "C", "embeddingBaseUrl": "http://[::1"}, "embeddingBaseUrl"),
        ({"collectionName": "C", "embeddingBaseUrl": "https://e.example:99999"}, "embeddingBaseUrl"),
        ({"collectionName": "C", "chunkMaxTokens": 10**6}, "chunkMaxTokens"),
        ({"collectionName": "C", "embeddingDimension": 2**40}, "embeddingDimension"),
        ({"collectionName": "C\x00"}, "collectionName"),
    ]
    for payload, param in cases:
        status, body = client.call("POST", "/collections", json=payload)
        assert _param(status, body) == param, payload


def test_document_fields_are_validated(client: Client, collection_id: str) -> None:
    cases = [
        ({"name": "a", "contents": "hello\x00world"}, "contents"),
        ({"name": "a\x00", "contents": "hello"}, "name"),
        ({"name": "a", "contents": "hello", "tags": ["t\x00"]}, "tags[0]"),
        ({"name": "a", "contents": "hello", "tags": ["t" * 101]}, "tags"),
        ({"name": "a", "contents": "hello", "metadata": {"k": "\x00"}}, "metadata.k"),
        ({"name": "a", "contents": "hello", "reference": "r" * 301}, "reference"),
    ]
    for payload, param in cases:
        status, body = client.call("PUT", f"/collections/{collection_id}/documents", json=payload)
        assert (_param(status, body) or "").startswith(param), payload


def test_search_terms_and_filters_are_validated(client: Client, collection_id: str) -> None:
    for query, param in [({"term": "a\x00b"}, "term"), ({"term": "a", "top": 10**12}, "top")]:
        status, body = client.call("GET", f"/collections/{collection_id}/query", params=query)
        assert _param(status, body) == param, query
    for query in [{"name": "a\x00"}, {"tag": "x" * 101}, {"content": "\x00"}]:
        status, body = client.call("GET", f"/collections/{collection_id}/documents", params=query)
        assert _param(status, body) == next(iter(query)), query


def _nested_json(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_bulk_jsonl_deeply_nested_or_with_nul_is_400(client: Client, collection_id: str) -> None:
    deep = b'{"text": "t", "meta": ' + _nested_json(100_000) + b"}\n"
    nul = json.dumps({"docid": "a", "text": "bad\u0000text"}).encode()
    for data in (deep, nul):
        files = {"documents": ("d.jsonl", data, "application/jsonl")}
        status, body = client.call("POST", f"/collections/{collection_id}/documents", files=files)
        assert _param(status, body) == "documents"
        assert body["error"]["code"] == "invalid_jsonl"


def test_a_deeply_nested_json_file_is_accepted_then_refused_with_a_reason(client: Client, collection_id: str) -> None:
    deep = _nested_json(100_000)
    files = {"files": ("deep", deep, "application/octet-stream")}
    status, body = client.call("POST", f"/collections/{collection_id}/files", files=files)
    assert status == 202, body
    with pytest.raises(parsing.DocumentParseError, match="nested too deeply"):
        parsing.parse_document(deep, filename="deep")


def test_upload_names_made_of_punctuation(client: Client, collection_id: str) -> None:
    for name in ["...", "!!!", "?*:", ". ."]:
        files = {"files": (name, b"hello there", "text/plain")}
        status, body = client.call("POST", f"/collections/{collection_id}/files", files=files)
        assert status == 202, (name, body)
    for name in ["..", "/"]:  # Django's multipart parser drops these files: a missing file, not a crash
        files = {"files": (name, b"hello there", "text/plain")}
        status, body = client.call("POST", f"/collections/{collection_id}/files", files=files)
        assert _param(status, body) == "files", name


def test_a_malformed_multipart_body_is_400(client: Client, collection_id: str) -> None:
    headers = {"Content-Type": "multipart/form-data"}
    status, body = client.call("POST", f"/collections/{collection_id}/files", content=b"--x\r\n", headers=headers)
    assert status == 400, body


def test_usage_dates(client: Client) -> None:
    for query, param in [({"to": "9999-12-31"}, "to"), ({"to": "9999-12-31T23:00:00-05:00"}, "to")]:
        status, body = client.call("GET", "/usage", params=query)
        assert _param(status, body) == param, query
    status, body = client.call("GET", "/usage", params={"from": "2026-01-01T00:00:00+20:00"})
    assert status == 200, body
