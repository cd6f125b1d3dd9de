from __future__ import annotations

import pytest
from django.test import Client

from accounts.services import user_create
from gateways.models import CatalogModel

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(db) -> Client:
    user = user_create(email="ops@aivax.test", password="pw-ops-123!", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    return client


def test_catalog_admin_never_shows_the_key_and_keeps_it_when_left_empty(staff_client, catalog_model) -> None:
    page = staff_client.get(f"/admin/gateways/catalogmodel/{catalog_model.pk}/change/")
    assert page.status_code == 200
    assert b"sk-platform-secret" not in page.content
    form = {
        "name": catalog_model.name,
        "base_url": catalog_model.base_url,
        "upstream_model": "renamed",
        "api_key": "",
        "context_window": 4096,
        "capabilities": "chat",
        "description": "",
        "is_active": "on",
        "created_at_0": "2026-01-01",
        "created_at_1": "00:00:00",
        "Price_catalog_model-TOTAL_FORMS": "0",
        "Price_catalog_model-INITIAL_FORMS": "0",
    }
    response = staff_client.post(f"/admin/gateways/catalogmodel/{catalog_model.pk}/change/", form)
    assert response.status_code in (200, 302)
    catalog_model.refresh_from_db()
    assert catalog_model.api_key == "sk-platform-secret"


def test_admin_lists_render(staff_client, gateway) -> None:
    for path in (
        "/admin/gateways/catalogmodel/",
        "/admin/gateways/gateway/",
        "/admin/gateways/byoendpoint/",
        f"/admin/gateways/gateway/{gateway.pk}/change/",
    ):
        assert staff_client.get(path).status_code == 200, path
    assert CatalogModel.objects.count() == 1


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest", "http://metadata.google.internal/v1", "http://[::ffff:a9fe:a9fe]/"]
)
def test_staff_cannot_point_a_catalog_model_at_metadata(staff_client, catalog_model, url) -> None:
    form = {
        "name": catalog_model.name,
        "base_url": url,
        "upstream_model": catalog_model.upstream_model,
        "api_key": "",
        "context_window": 4096,
        "capabilities": "chat",
        "description": "",
        "is_active": "on",
        "Price_catalog_model-TOTAL_FORMS": "0",
        "Price_catalog_model-INITIAL_FORMS": "0",
    }
    response = staff_client.post(f"/admin/gateways/catalogmodel/{catalog_model.pk}/change/", form)
    assert response.status_code == 200  # the form again, with the error
    assert b"not allowed" in response.content
    catalog_model.refresh_from_db()
    assert catalog_model.base_url != url


def test_staff_byo_endpoint_form_applies_the_tenant_policy(staff_client, org, settings) -> None:
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    form = {
        "organization": org.pk,
        "name": "x",
        "base_url": "http://127.0.0.1:8000/v1",
        "model_name": "m",
        "api_key": "",
    }
    form["context_window"] = 4096
    response = staff_client.post("/admin/gateways/byoendpoint/add/", form)
    assert response.status_code == 200 and b"not allowed" in response.content
