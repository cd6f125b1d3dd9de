"""API key pages: the secret is shown once, the list shows prefix/scopes/last use/expiry, revoking works."""

from __future__ import annotations

import datetime as dt

from asgiref.sync import async_to_sync
from django.test import Client
from django.utils import timezone

from accounts.auth import aauthenticate_key
from accounts.models import ApiKey, Scope
from accounts.services import api_key_create

# Production authenticates keys only on the async path; these sync tests drive that path.
authenticate_key = async_to_sync(aauthenticate_key)


def test_create_shows_the_secret_once(as_dev: Client, org, teammate) -> None:
    response = as_dev.post("/console/keys/", {"name": "Backend", "scopes": ["inference"], "expires_in": "30"})
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    raw = response.context["created"].raw
    html = response.content.decode()
    assert raw in html and 'data-copy="#new-key-value"' in html
    key = ApiKey.objects.for_org(org).get()
    assert key.name == "Backend" and key.scopes == ["inference"] and key.created_by == teammate
    assert timezone.now() + dt.timedelta(days=29) < key.expires_at < timezone.now() + dt.timedelta(days=31)
    assert authenticate_key(raw).key_id == key.pk
    listing = as_dev.get("/console/keys/").content.decode()
    assert raw not in listing and key.prefix in listing


def test_list_columns(as_owner: Client, api_key) -> None:
    ApiKey.objects.for_org(api_key.key.organization_id).update(last_used_at=timezone.now() - dt.timedelta(hours=2))
    html = as_owner.get("/console/keys/").content.decode()
    assert api_key.key.prefix in html and "2\xa0hours ago" in html
    for scope in Scope.values:
        assert f">{scope}</span>" in html


def test_create_errors_next_to_fields(as_owner: Client, org) -> None:
    response = as_owner.post("/console/keys/", {"name": "", "scopes": []})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_name_error"' in html and 'id="id_scopes_error"' in html
    assert not ApiKey.objects.for_org(org).exists()


def test_gateway_restriction(as_owner: Client, org, gateway) -> None:
    as_owner.post("/console/keys/", {"name": "one", "scopes": ["inference"], "gateways": [str(gateway.pk)]})
    assert ApiKey.objects.for_org(org).get().allowed_gateway_ids == [gateway.pk]


def test_developer_cannot_mint_admin_keys(as_dev: Client, org) -> None:
    assert 'value="admin"' not in as_dev.get("/console/keys/").content.decode()
    response = as_dev.post("/console/keys/", {"name": "root", "scopes": ["admin"]})
    assert response.status_code == 400 and not ApiKey.objects.for_org(org).exists()


def test_admin_can_mint_admin_keys(as_admin: Client, org) -> None:
    assert as_admin.post("/console/keys/", {"name": "ops", "scopes": ["admin"]}).status_code == 201


def test_revoke(as_dev: Client, org) -> None:
    created = api_key_create(organization=org, name="old", scopes=[Scope.INFERENCE])
    response = as_dev.post(f"/console/keys/{created.key.pk}/revoke", follow=True)
    assert "Revoked old" in response.content.decode()
    created.key.refresh_from_db()
    assert created.key.revoked_at is not None
    assert as_dev.get(f"/console/keys/{created.key.pk}/revoke").status_code == 405


def test_developer_cannot_revoke_admin_keys(as_dev: Client, as_owner: Client, api_key) -> None:
    as_dev.post(f"/console/keys/{api_key.key.pk}/revoke")
    api_key.key.refresh_from_db()
    assert api_key.key.revoked_at is None
    as_owner.post(f"/console/keys/{api_key.key.pk}/revoke")
    api_key.key.refresh_from_db()
    assert api_key.key.revoked_at is not None


def test_create_a_public_key_with_origins_and_limits(as_owner: Client, org, gateway) -> None:
    response = as_owner.post(
        "/console/keys/",
        {
            "name": "Widget",
            "kind": "public",
            "scopes": ["inference", "knowledge"],  # ignored: a public key has inference only
            "gateways": [str(gateway.pk)],
            "allowed_origins": "https://shop.example.com\nhttps://www.example.com/",
            "requests_per_minute": "20",
            "tokens_per_minute": "4000",
        },
    )
    assert response.status_code == 201, response.content.decode()[:2000]
    raw = response.context["created"].raw
    assert raw.startswith("pk-aivax-")
    key = ApiKey.objects.for_org(org).get()
    assert key.kind == "public" and key.scopes == ["inference"] and key.allowed_gateway_ids == [gateway.pk]
    assert key.allowed_origins == ["https://shop.example.com", "https://www.example.com"]
    assert (key.requests_per_minute, key.requests_per_day, key.tokens_per_minute) == (20, None, 4000)
    html = as_owner.get("/console/keys/").content.decode()
    assert f"pk-aivax-{key.prefix}" in html and "From https://shop.example.com, https://www.example.com" in html
    assert "20 req/min" in html and "4000 tokens/min" in html


def test_a_public_key_without_origins_or_gateways_is_refused_next_to_the_field(as_owner: Client, org, gateway) -> None:
    response = as_owner.post("/console/keys/", {"name": "W", "kind": "public", "scopes": ["inference"]})
    assert response.status_code == 400 and 'id="id_gateways_error"' in response.content.decode()
    response = as_owner.post(
        "/console/keys/", {"name": "W", "kind": "public", "scopes": ["inference"], "gateways": [str(gateway.pk)]}
    )
    assert response.status_code == 400 and 'id="id_allowed_origins_error"' in response.content.decode()
    assert not ApiKey.objects.for_org(org).exists()
