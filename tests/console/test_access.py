"""Who may open which console page: anonymous, owner, developer, billing member, outsider."""

from __future__ import annotations

import pytest
from django.test import Client

from gateways.models import Gateway

BUILD_PAGES = [
    "/console/gateways/",
    "/console/gateways/new",
    "/console/keys/",
    "/console/knowledge/",
    "/console/playground/",
    "/console/members/",
]
ALL_PAGES = ["/console/", *BUILD_PAGES, "/console/usage/"]


@pytest.mark.parametrize("url", ALL_PAGES)
def test_anonymous_is_sent_to_sign_in(db: None, url: str) -> None:
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_root_redirects(db: None, as_owner: Client) -> None:
    assert Client().get("/")["Location"] == "/accounts/login/"
    assert as_owner.get("/")["Location"] == "/console/"


@pytest.mark.parametrize("url", ALL_PAGES)
def test_owner_and_developer_open_every_page(as_owner: Client, as_dev: Client, gateway: Gateway, url: str) -> None:
    # No redirects followed: a redirect to the sign-in page must not pass for the page itself. The playground's
    # index opens the first gateway's playground, which is checked in its turn.
    expected = {"/console/playground/": f"/console/gateways/{gateway.pk}/playground"}
    for client in (as_owner, as_dev):
        response = client.get(url)
        if url in expected:
            assert response.status_code == 302 and response["Location"] == expected[url]
            response = client.get(expected[url])
        assert response.status_code == 200, (url, response.status_code, response.get("Location"))


@pytest.mark.parametrize("url", BUILD_PAGES)
def test_billing_member_sees_only_usage(as_billing: Client, url: str) -> None:
    assert as_billing.get(url).status_code == 403


def test_billing_member_lands_on_usage_with_a_reduced_menu(as_billing: Client) -> None:
    response = as_billing.get("/console/", follow=True)
    assert response.redirect_chain[-1][0] == "/console/usage/"
    html = response.content.decode()
    assert "Usage &amp; balance" in html
    for hidden in ("/console/gateways/", "/console/keys/", "/console/playground/", "/console/members/"):
        assert f'href="{hidden}"' not in html


def test_billing_member_cannot_touch_gateways(as_billing: Client, gateway) -> None:
    for url in (f"/console/gateways/{gateway.pk}/", f"/console/gateways/{gateway.pk}/edit"):
        assert as_billing.get(url).status_code == 403
    assert as_billing.post(f"/console/gateways/{gateway.pk}/delete").status_code == 403


def test_outsider_gets_404_for_another_organizations_objects(as_outsider: Client, gateway, api_key) -> None:
    for url in (
        f"/console/gateways/{gateway.pk}/",
        f"/console/gateways/{gateway.pk}/edit",
        f"/console/gateways/{gateway.pk}/delete",
        f"/console/gateways/{gateway.pk}/playground",
    ):
        assert as_outsider.get(url).status_code == 404, url
    assert as_outsider.post(f"/console/gateways/{gateway.pk}/delete").status_code == 404
    assert as_outsider.post(f"/console/keys/{api_key.key.pk}/revoke").status_code == 404
    api_key.key.refresh_from_db()
    assert api_key.key.revoked_at is None
    gateway.refresh_from_db()  # still there


def test_outsider_lists_show_only_their_own(as_outsider: Client, gateway, api_key, outsider_gateway) -> None:
    html = as_outsider.get("/console/gateways/").content.decode()
    assert outsider_gateway.name in html and gateway.name not in html
    html = as_outsider.get("/console/keys/").content.decode()
    assert api_key.key.prefix not in html


def test_user_without_organization_is_asked_to_create_one(db: None) -> None:
    from accounts.services import user_create

    client = Client()
    client.force_login(user_create(email="loner@nowhere.test", password="pw-loner-123!"))
    response = client.get("/console/gateways/")
    assert response.status_code == 302 and response["Location"] == "/console/organizations/new"
    response = client.post("/console/organizations/new", {"name": "Loner Inc"}, follow=True)
    assert response.status_code == 200
    assert "Loner Inc" in response.content.decode()
