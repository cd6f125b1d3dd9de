"""Sign up, create a gateway, create and revoke a key: in a real browser."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from accounts.models import ApiKey, User
from gateways.models import Gateway
from gateways.services import catalog_model_upsert
from tests.browser.conftest import nav, shot, sign_in

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    # WhiteNoise serves static files with a sync iterator, which Django's ASGI handler warns about.
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators"),
]


@pytest.fixture
def catalog(db: None) -> None:
    catalog_model_upsert(name="@local/stub", base_url="http://127.0.0.1:9/v1", upstream_model="stub")


def test_sign_up_then_sign_out_and_in(page: Page) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    shot(page, "01-sign-in")
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Work email").fill("Founder@Initech.test")
    page.get_by_label("Organization name").fill("Initech")
    page.get_by_label("Password", exact=True).fill("short")
    page.get_by_label("Confirm password").fill("short")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator(".field.has-error")).to_have_count(1)
    shot(page, "02-sign-up-errors")
    page.get_by_label("Password", exact=True).fill("a-long-Secret-42")
    page.get_by_label("Confirm password").fill("a-long-Secret-42")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Initech")).to_be_visible()
    shot(page, "03-overview-new-org")
    assert User.objects.get(email="founder@initech.test").memberships.get().role == "owner"

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    sign_in(page, "founder@initech.test", "a-long-Secret-42")
    expect(page.get_by_role("heading", name="Initech")).to_be_visible()


def test_create_edit_gateway(page: Page, owner: User, org, catalog: None) -> None:
    sign_in(page, "owner@acme.test", "pw-owner-123!")
    nav(page, "Gateways")
    page.get_by_role("link", name="New gateway").first.click()
    page.get_by_label("Name", exact=True).fill("Support bot")
    page.get_by_label("Model", exact=True).select_option(label="@local/stub")
    page.get_by_label("Instructions").fill("You answer questions about Acme's products.")
    page.get_by_label("Temperature", exact=True).fill("3")
    page.get_by_label("Stop sequences").fill("END, STOP")
    page.get_by_role("button", name="Create gateway").click()
    # The service's validation message appears next to the field.
    error = page.locator('[data-field="temperature"] .errorlist')
    expect(error).to_contain_text("between 0")
    shot(page, "04-gateway-form-error")
    page.get_by_label("Temperature", exact=True).fill("0.4")
    page.get_by_role("button", name="Create gateway").click()
    expect(page.get_by_role("heading", name=re.compile("Support bot"))).to_be_visible()
    gateway = Gateway.objects.for_org(org).get()
    assert gateway.stop == ["END", "STOP"] and gateway.temperature == 0.4
    expect(page.locator("#snippet-curl")).to_contain_text(gateway.slug)
    expect(page.locator("#snippet-curl")).to_contain_text("<your API key>")
    shot(page, "05-gateway-detail")
    page.get_by_role("tab", name="Python (OpenAI SDK)").click()
    expect(page.locator("#snippet-python")).to_be_visible()
    expect(page.locator("#snippet-python")).to_contain_text(f'model="{gateway.slug}"')


def test_create_and_revoke_key(page: Page, owner: User, org) -> None:
    sign_in(page, "owner@acme.test", "pw-owner-123!")
    nav(page, "API keys")
    page.get_by_label("Name").fill("Backend")
    page.get_by_label("knowledge").check()
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key-value")
    expect(secret).to_contain_text("sk-")
    raw = secret.inner_text().strip()
    shot(page, "06-key-created")
    key = ApiKey.objects.for_org(org).get()
    assert key.prefix in raw and set(key.scopes) == {"inference", "knowledge"}
    # Shown once: a fresh visit does not show it again.
    page.goto("/console/keys/")
    expect(page.locator("#new-key-value")).to_have_count(0)
    assert raw not in page.content()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke Backend").click()
    expect(page.locator(f'tr[data-key="{key.prefix}"]')).to_contain_text("Revoked")
    shot(page, "07-key-revoked")
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_add_own_endpoint_from_the_gateway_form(page: Page, owner: User, org, catalog: None) -> None:
    sign_in(page, "owner@acme.test", "pw-owner-123!")
    page.goto("/console/gateways/new")
    page.get_by_label("Name", exact=True).fill("On my server")
    page.get_by_text("Add your own endpoint").click()
    panel = page.locator("#byo-panel")
    panel.get_by_label("Endpoint name").fill("My vLLM")
    panel.get_by_label("Base URL").fill("ftp://nope")
    panel.get_by_label("Upstream model name").fill("qwen2.5")
    panel.get_by_role("button", name="Add endpoint").click()
    expect(panel.locator('[data-field="base_url"] .errorlist')).to_be_visible()
    panel.get_by_label("Base URL").fill("http://127.0.0.1:8001/v1")
    panel.get_by_label("API key").fill("sk-upstream-secret")
    panel.get_by_role("button", name="Add endpoint").click()
    expect(panel.get_by_role("status")).to_contain_text("Added My vLLM")
    # The model select was refreshed in place (htmx out-of-band swap); the name typed above is still there.
    expect(page.get_by_label("Model", exact=True)).to_have_value(re.compile(r"^byo:"))
    expect(page.get_by_label("Name", exact=True)).to_have_value("On my server")
    shot(page, "04b-gateway-own-endpoint")
    page.get_by_role("button", name="Create gateway").click()
    expect(page.get_by_role("heading", name=re.compile("On my server"))).to_be_visible()
    assert Gateway.objects.for_org(org).get().byo_endpoint.name == "My vLLM"
    assert "sk-upstream-secret" not in page.content()
