"""Keys over the API (admin scope, envelope {message, data}): the secret once, never listed; a key never grants
more than the key that creates or edits it; edits and revocations (API, services, Django admin) apply at once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import Client
from django.utils import timezone

from accounts.auth import aauthenticate_key
from accounts.models import ApiKey, Scope
from accounts.services import CreatedKey, api_key_create, api_key_revoke, user_create
from gateways.services import gateway_create
from quotas.policy import Limits

pytestmark = pytest.mark.django_db


class Api:
    def __init__(self, raw: str) -> None:
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {raw}"}

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        kwargs: dict[str, Any] = {"headers": self.headers}
        if body is not None:
            kwargs.update(data=body, content_type="application/json")
        response = getattr(self.client, method)(f"/api/v1{path}", **kwargs)
        return response.status_code, response.json()


@pytest.fixture
def gateways(org, catalog_model):
    return [gateway_create(organization=org, name=f"G{i}", catalog_model=catalog_model) for i in range(2)]


# Production authenticates keys only on the async path; these sync tests drive that path.
authenticate_key = async_to_sync(aauthenticate_key)


def _admin_key(org, **kwargs: Any) -> CreatedKey:
    return api_key_create(organization=org, name="admin", scopes=kwargs.pop("scopes", list(Scope.values)), **kwargs)


def test_create_answers_the_secret_once_and_lists_never_show_it(api_key, gateways) -> None:
    api = Api(api_key.raw)
    body = {
        "name": "backend",
        "scopes": ["inference"],
        "gatewayIds": [str(gateways[0].pk)],
        "limits": {"requestsPerMinute": 30, "requestsPerDay": 1000, "tokensPerMinute": 5000},
    }
    status, created = api.call("post", "/api-keys", body)
    assert status == 201, created
    assert set(created) == {"message", "data"}
    raw = created["data"]["key"]
    assert raw.startswith("sk-aivax-") and created["data"]["prefix"] == raw[: len("sk-aivax-") + 12]
    assert created["data"]["limits"] == {"requestsPerMinute": 30, "requestsPerDay": 1000, "tokensPerMinute": 5000}
    assert created["data"]["gatewayIds"] == [str(gateways[0].pk)] and created["data"]["type"] == "secret"
    principal = authenticate_key(raw)
    assert principal.scopes == {"inference"} and principal.rate_limits == Limits(30, 1000, 5000)

    status, listed = api.call("get", "/api-keys")
    assert status == 200 and raw not in str(listed)
    assert all("key" not in item and "digest" not in item for item in listed["data"])
    status, one = api.call("get", f"/api-keys/{created['data']['id']}")
    assert status == 200 and one["data"]["name"] == "backend" and "key" not in one["data"]


def test_needs_the_admin_scope_and_stays_in_its_organization(org, outsider_key) -> None:
    inference_only = api_key_create(organization=org, name="app", scopes=["inference"])
    status, body = Api(inference_only.raw).call("get", "/api-keys")
    assert status == 403 and body["error"]["code"] == "missing_scope"
    status, body = Api(outsider_key.raw).call("get", f"/api-keys/{inference_only.key.pk}")
    assert status == 404
    assert Api(outsider_key.raw).call("delete", f"/api-keys/{inference_only.key.pk}")[0] == 404
    assert authenticate_key(inference_only.raw)


def test_a_key_never_grants_more_than_its_creator(org, gateways) -> None:
    soon = timezone.now() + timedelta(days=3)
    creator = _admin_key(
        org,
        scopes=["inference", "admin"],
        allowed_gateway_ids=[gateways[0].pk],
        limits=Limits(requests_per_minute=10),
        expires_at=soon,
    )
    api = Api(creator.raw)
    refused = [
        {"name": "x", "scopes": ["knowledge"]},
        {"name": "x", "gatewayIds": [str(gateways[1].pk)]},
        {"name": "x", "limits": {"requestsPerMinute": 11}},
        {"name": "x", "expiresAt": (soon + timedelta(days=1)).isoformat()},
    ]
    for body in refused:
        status, answer = api.call("post", "/api-keys", body)
        assert status == 403 and answer["error"]["code"] == "exceeds_creator", body
    # What is left out is inherited from the creator.
    status, answer = api.call("post", "/api-keys", {"name": "child", "limits": {"tokensPerMinute": 100}})
    assert status == 201, answer
    child = answer["data"]
    assert child["gatewayIds"] == [str(gateways[0].pk)]
    assert child["limits"] == {"requestsPerMinute": 10, "requestsPerDay": None, "tokensPerMinute": 100}
    assert child["expiresAt"] == soon.isoformat()
    # Editing follows the same rule: the key as it would be must stay within the editor.
    status, answer = api.call("patch", f"/api-keys/{child['id']}", {"limits": {"requestsPerMinute": 50}})
    assert status == 403 and answer["error"]["code"] == "exceeds_creator"
    broader = _admin_key(org)
    status, answer = api.call("patch", f"/api-keys/{broader.key.pk}", {"name": "renamed"})
    assert status == 403  # a narrower key cannot edit a broader one


def test_edits_and_revocations_apply_at_once(org, api_key) -> None:
    target = api_key_create(organization=org, name="target", scopes=["inference", "knowledge"])
    api, target_api = Api(api_key.raw), Api(target.raw)
    assert target_api.call("get", "/collections")[0] == 200  # the key's record is now cached in Redis
    status, body = api.call("patch", f"/api-keys/{target.key.pk}", {"scopes": ["inference"], "name": "narrow"})
    assert status == 200 and body["data"]["scopes"] == ["inference"] and body["data"]["name"] == "narrow"
    assert target_api.call("get", "/collections")[0] == 403
    status, body = api.call("delete", f"/api-keys/{target.key.pk}")
    assert status == 200 and body["data"]["revokedAt"] and body["data"]["active"] is False
    assert target_api.call("get", "/me")[0] == 401


def test_patch_validates_like_create(api_key) -> None:
    api = Api(api_key.raw)
    status, created = api.call("post", "/api-keys", {"name": "k"})
    key_id = created["data"]["id"]
    for body, param in [
        ({"scopes": ["telepathy"]}, "scopes"),
        ({"scopes": []}, "scopes"),
        ({"limits": {"requestsPerMinute": 0}}, "limits.requestsPerMinute"),
        ({"expiresAt": (timezone.now() - timedelta(days=1)).isoformat()}, "expires_at"),
        ({"allowedOrigins": ["https://a.example"]}, "allowed_origins"),
    ]:
        status, answer = api.call("patch", f"/api-keys/{key_id}", body)
        assert status == 400 and answer["error"]["param"] == param, (body, answer)
    assert api.call("post", "/api-keys", {"name": ""})[0] == 400
    assert api.call("get", "/api-keys/not-a-uuid")[0] in (400, 404)


def test_django_admin_edits_and_revocations_apply_at_once(org) -> None:
    staff = user_create(email="ops@aivax.test", password="pw-ops-123!", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff)
    edited, revoked = (api_key_create(organization=org, name=n, scopes=["inference"]) for n in ("a", "b"))
    for created in (edited, revoked):
        authenticate_key(created.raw)  # cached
    # What the admin's change form does: save the model (with an expiry in the past, here).
    key = ApiKey.unscoped.get(pk=edited.key.pk)
    key.expires_at = timezone.now() - timedelta(seconds=1)
    key.save()
    with pytest.raises(Exception, match="Incorrect API key"):
        authenticate_key(edited.raw)
    response = client.post(
        "/admin/accounts/apikey/", {"action": "revoke", "_selected_action": [str(revoked.key.pk)]}, follow=True
    )
    assert response.status_code == 200 and b"Revoked 1 key" in response.content
    with pytest.raises(Exception, match="Incorrect API key"):
        authenticate_key(revoked.raw)
    assert client.get(f"/admin/accounts/apikey/{edited.key.pk}/change/").status_code == 200
    assert client.get(f"/admin/accounts/organization/{org.pk}/change/").status_code == 200
    assert client.get("/admin/quotas/plan/").status_code == 200


def test_a_lookup_that_raced_a_revocation_cannot_cache_the_old_row(api_key, monkeypatch) -> None:
    """A request read the key's row just before the revocation committed, and stores it after the cache entry
    was deleted: the change's marker stops it, so the next request reads the revoked row."""
    from accounts import auth

    stale = auth.Principal.from_key(ApiKey.unscoped.get(pk=api_key.key.pk))
    api_key_revoke(key=api_key.key)
    monkeypatch.setattr(auth.Principal, "from_key", classmethod(lambda cls, key: stale))
    assert authenticate_key(api_key.raw) == stale  # the raced request itself still ran on what it read
    monkeypatch.undo()
    with pytest.raises(Exception, match="Incorrect API key"):
        authenticate_key(api_key.raw)


def test_public_keys_over_the_api(api_key, gateways) -> None:
    api = Api(api_key.raw)
    body = {
        "name": "widget",
        "type": "public",
        "gatewayIds": [str(gateways[0].pk)],
        "allowedOrigins": ["https://Shop.Example.com/"],
        "limits": {"requestsPerMinute": 20},
    }
    status, created = api.call("post", "/api-keys", body)
    assert status == 201, created
    data = created["data"]
    assert data["key"].startswith("pk-aivax-") and data["prefix"].startswith("pk-aivax-")
    assert data["type"] == "public" and data["scopes"] == ["inference"]
    assert data["allowedOrigins"] == ["https://shop.example.com"]
    status, answer = api.call("post", "/api-keys", {**body, "allowedOrigins": []})
    assert status == 400 and answer["error"]["param"] == "allowed_origins"
    status, answer = api.call("post", "/api-keys", {**body, "scopes": ["inference", "admin"]})
    assert status == 400 and answer["error"]["param"] == "scopes"
    # A public key manages nothing, not even from an allowed origin.
    public = Client().get(
        "/api/v1/api-keys", headers={"Authorization": f"Bearer {data['key']}", "Origin": "https://shop.example.com"}
    )
    assert public.status_code == 403 and public.json()["error"]["code"] == "public_key_scope"


def test_monthly_budget_is_set_read_and_never_above_the_creating_keys(org) -> None:  # type: ignore[no-untyped-def]
    from decimal import Decimal

    unlimited = Api(_admin_key(org).raw)
    status, created = unlimited.call("post", "/api-keys", {"name": "capped", "monthlyBudget": "12.5"})
    assert status == 201, created
    assert created["data"]["monthlyBudget"] == 12.5
    key = ApiKey.unscoped.get(pk=created["data"]["id"])
    assert key.monthly_budget == Decimal("12.5")

    budgeted = _admin_key(org)
    ApiKey.unscoped.filter(pk=budgeted.key.pk).update(monthly_budget=Decimal("10"))
    capped = Api(budgeted.raw)
    status, inherited = capped.call("post", "/api-keys", {"name": "child"})
    assert status == 201 and inherited["data"]["monthlyBudget"] == 10, inherited  # left out: the creator's
    status, refused = capped.call("post", "/api-keys", {"name": "greedy", "monthlyBudget": 11})
    assert status == 403 and refused["error"]["code"] == "exceeds_creator", refused
    status, negative = unlimited.call("post", "/api-keys", {"name": "neg", "monthlyBudget": -1})
    assert status in (400, 422) and "error" in negative

    status, patched = unlimited.call("patch", f"/api-keys/{created['data']['id']}", {"monthlyBudget": None})
    assert status == 200 and patched["data"]["monthlyBudget"] is None
    assert ApiKey.unscoped.get(pk=created["data"]["id"]).monthly_budget is None
