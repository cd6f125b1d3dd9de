"""Public keys (pk-aivax-...): inference only, on their gateways, from their browser origins (CORS answered
for those only, preflight included), only model/messages/stream from the caller, their own rate limits."""

from __future__ import annotations

import httpx
import pytest

from accounts.models import KeyKind
from accounts.services import CreatedKey, api_key_create
from aivax.errors import InvalidRequest
from gateways.services import gateway_create
from quotas.policy import Limits

pytestmark = pytest.mark.django_db(transaction=True)

SITE = "https://shop.example.com"
OTHER = "https://evil.example.net"


@pytest.fixture
def public_key(org, gateway) -> CreatedKey:
    return api_key_create(
        organization=org,
        name="widget",
        kind=KeyKind.PUBLIC,
        scopes=["inference"],
        allowed_gateway_ids=[gateway.pk],
        allowed_origins=[SITE + "/"],
        limits=Limits(requests_per_minute=3),
    )


def _chat(live_asgi, key: str, body: dict, origin: str | None = SITE) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    if origin:
        headers["Origin"] = origin
    return httpx.post(f"{live_asgi.url}/api/v1/chat/completions", json=body, headers=headers, timeout=20)


def _ask(gateway, **extra) -> dict:
    return {"model": gateway.slug, "messages": [{"role": "user", "content": "hi"}], **extra}


def test_a_public_key_works_from_its_origin_with_cors_headers(live_asgi, public_key, gateway) -> None:
    assert public_key.raw.startswith("pk-aivax-")
    response = _chat(live_asgi, public_key.raw, _ask(gateway))
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Echo: hi"
    assert response.headers["Access-Control-Allow-Origin"] == SITE
    assert "x-ratelimit-remaining-requests" in response.headers["Access-Control-Expose-Headers"]
    assert response.headers["x-ratelimit-limit-requests"] == "3"  # its own limit is the tightest
    assert "Access-Control-Allow-Credentials" not in response.headers
    streamed = _chat(live_asgi, public_key.raw, _ask(gateway, stream=True))
    assert streamed.status_code == 200 and streamed.text.rstrip().endswith("data: [DONE]")
    assert streamed.headers["Access-Control-Allow-Origin"] == SITE


@pytest.mark.parametrize("origin", [OTHER, None, "https://shop.example.com.evil.net", "http://shop.example.com"])
def test_refused_from_any_other_origin(live_asgi, public_key, gateway, origin) -> None:
    response = _chat(live_asgi, public_key.raw, _ask(gateway), origin=origin)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in response.headers


def test_preflight_is_answered_for_allowed_origins_only(live_asgi, public_key) -> None:
    def preflight(origin: str) -> httpx.Response:
        return httpx.options(
            f"{live_asgi.url}/api/v1/chat/completions",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )

    allowed = preflight(SITE)
    assert allowed.status_code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == SITE
    assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
    assert allowed.headers["Access-Control-Allow-Headers"] == "authorization, content-type"
    refused = preflight(OTHER)
    assert refused.status_code == 403 and "Access-Control-Allow-Origin" not in refused.headers
    # Not an inference path: no CORS at all.
    other_path = httpx.options(
        f"{live_asgi.url}/api/v1/collections", headers={"Origin": SITE, "Access-Control-Request-Method": "GET"}
    )
    assert "Access-Control-Allow-Origin" not in other_path.headers


@pytest.mark.parametrize("field", ["temperature", "max_tokens", "tools", "stream_options", "metadata", "user"])
def test_only_model_messages_and_stream_are_accepted(live_asgi, public_key, gateway, field) -> None:
    response = _chat(live_asgi, public_key.raw, _ask(gateway, **{field: 1}))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == field and error["code"] == "unsupported_parameter"
    assert response.headers["Access-Control-Allow-Origin"] == SITE  # the page can read why


def test_only_its_gateways_and_only_inference(live_asgi, public_key, org, gateway, catalog_model) -> None:
    other = gateway_create(organization=org, name="Internal", catalog_model=catalog_model)
    response = _chat(live_asgi, public_key.raw, _ask(other))
    assert response.status_code == 403 and response.json()["error"]["code"] == "gateway_not_allowed"
    headers = {"Authorization": f"Bearer {public_key.raw}", "Origin": SITE}
    models = httpx.get(f"{live_asgi.url}/api/v1/models", headers=headers).json()["data"]
    assert [m["id"] for m in models] == [gateway.slug]
    for path in ("/api/v1/collections", "/api/v1/me", "/api/v1/api-keys", "/api/v1/balance"):
        response = httpx.get(f"{live_asgi.url}{path}", headers=headers)
        assert response.status_code == 403, path
        assert response.json()["error"]["code"] == "public_key_scope"


def test_its_own_rate_limits_apply_and_the_page_can_read_the_429(live_asgi, public_key, gateway) -> None:
    statuses = [_chat(live_asgi, public_key.raw, _ask(gateway)) for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    assert statuses[-1].headers["Access-Control-Allow-Origin"] == SITE
    assert "for this API key" in statuses[-1].json()["error"]["message"]


def test_secret_keys_get_no_cors_headers(live_asgi, api_key, gateway) -> None:
    response = _chat(live_asgi, api_key.raw, _ask(gateway, temperature=0.2))
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


def test_models_lists_only_the_gateways_a_key_may_use(live_asgi, org, gateway, catalog_model) -> None:
    other = gateway_create(organization=org, name="Other", catalog_model=catalog_model)
    narrow = api_key_create(organization=org, name="narrow", scopes=["inference"], allowed_gateway_ids=[other.pk])
    headers = {"Authorization": f"Bearer {narrow.raw}"}
    listed = httpx.get(f"{live_asgi.url}/api/v1/models", headers=headers).json()["data"]
    assert [m["id"] for m in listed] == [other.slug]
    assert httpx.get(f"{live_asgi.url}/api/v1/models/{gateway.slug}", headers=headers).status_code == 404
    assert httpx.get(f"{live_asgi.url}/api/v1/models/{other.slug}", headers=headers).status_code == 200


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"allowed_origins": []}, "allowed_origins"),
        ({"allowed_gateway_ids": []}, "allowed_gateway_ids"),
        ({"scopes": ["inference", "knowledge"]}, "scopes"),
        ({"allowed_origins": ["shop.example.com"]}, "allowed_origins"),
        ({"allowed_origins": ["https://shop.example.com/path"]}, "allowed_origins"),
    ],
)
def test_a_public_key_needs_origins_and_gateways_and_has_inference_only(org, gateway, changes, param) -> None:
    fields = {
        "scopes": ["inference"],
        "allowed_gateway_ids": [gateway.pk],
        "allowed_origins": [SITE],
        **changes,
    }
    with pytest.raises(InvalidRequest) as raised:
        api_key_create(organization=org, name="w", kind=KeyKind.PUBLIC, **fields)
    assert raised.value.param == param
