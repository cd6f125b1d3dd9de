"""Every console form is CSRF-protected: a POST without the token is refused, with it is accepted."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Membership


def _posts(gateway, api_key, teammate) -> list[tuple[str, dict]]:
    from knowledge.services import collection_create

    membership = Membership.objects.get(user=teammate)
    collection = collection_create(organization=gateway.organization_id, name="c")
    some_id = "00000000-0000-0000-0000-000000000000"
    return [
        ("/console/knowledge/", {"name": "x"}),
        (f"/console/knowledge/{collection.pk}/upload", {}),
        (f"/console/knowledge/{collection.pk}/delete", {}),
        (f"/console/knowledge/{collection.pk}/documents/{some_id}/delete", {}),
        (f"/console/knowledge/{collection.pk}/documents/{some_id}/retry", {}),
        ("/console/gateways/new", {"name": "x"}),
        (f"/console/gateways/{gateway.pk}/edit", {"name": "x"}),
        (f"/console/gateways/{gateway.pk}/delete", {}),
        ("/console/endpoints/new", {"name": "x"}),
        ("/console/keys/", {"name": "x", "scopes": ["inference"]}),
        (f"/console/keys/{api_key.key.pk}/revoke", {}),
        ("/console/members/invite", {"email": "x@x.test", "role": "developer"}),
        (f"/console/members/{membership.pk}/role", {}),
        (f"/console/members/{membership.pk}/remove", {}),
        ("/console/organizations/switch", {"organization": "1"}),
        ("/console/organizations/new", {"name": "x"}),
        (f"/console/gateways/{gateway.pk}/playground/chat", {}),
        ("/accounts/logout/", {}),
    ]


def test_posts_without_the_token_are_refused(csrf_client: Client, gateway, api_key, teammate) -> None:
    for url, data in _posts(gateway, api_key, teammate):
        assert csrf_client.post(url, data).status_code == 403, url
    api_key.key.refresh_from_db()
    assert api_key.key.revoked_at is None


@pytest.mark.parametrize("url", ["/accounts/login/", "/accounts/signup/", "/accounts/password-reset/"])
def test_anonymous_forms_need_the_token_too(db: None, url: str) -> None:
    assert Client(enforce_csrf_checks=True).post(url, {"email": "a@b.test"}).status_code == 403


def test_forms_carry_the_token(csrf_client: Client, gateway) -> None:
    for url in ("/console/keys/", "/console/gateways/new", f"/console/gateways/{gateway.pk}/edit", "/console/members/"):
        html = csrf_client.get(url).content.decode()
        assert html.count('name="csrfmiddlewaretoken"') >= 2, url  # the page's form(s) and sign-out
    token = csrf_client.cookies["csrftoken"].value
    response = csrf_client.post("/console/keys/", {"name": "ok", "scopes": ["inference"], "csrfmiddlewaretoken": token})
    assert response.status_code == 201
