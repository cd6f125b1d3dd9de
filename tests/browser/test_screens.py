"""The remaining main pages, on a desktop and a phone: members (invite someone), gateways list, mobile drawer."""

from __future__ import annotations

import pytest
from django.core import mail
from playwright.sync_api import Browser, Page, expect

from accounts.models import Membership
from tests.browser.conftest import nav, shot, sign_in

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators"),
]


def test_invite_a_member_and_change_a_role(page: Page, owner, org, teammate, live_gateway) -> None:
    sign_in(page, "owner@acme.test", "pw-owner-123!")
    nav(page, "Gateways")
    expect(page.get_by_role("link", name="Stub bot", exact=True)).to_be_visible()
    shot(page, "11-gateways")

    nav(page, "Members")
    page.get_by_label("Email address").fill("ledger@acme.test")
    page.get_by_label("Role", exact=True).select_option("billing")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_role("status")).to_contain_text("Added ledger@acme.test as Billing")
    invited = Membership.objects.get(user__email="ledger@acme.test")
    assert invited.role == "billing" and len(mail.outbox) == 1

    dev = Membership.objects.get(user=teammate)
    page.get_by_label("Role of dev@acme.test").select_option("admin")
    page.locator(f'form[action="/console/members/{dev.pk}/role"]').get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("dev@acme.test is now Admin")
    shot(page, "12-members")


def test_phone_layout(browser: Browser, console_server, owner, org, live_gateway) -> None:
    context = browser.new_context(base_url=console_server.url, viewport={"width": 390, "height": 844})
    phone = context.new_page()
    sign_in(phone, "owner@acme.test", "pw-owner-123!")
    sidebar = phone.locator("#sidebar")
    assert sidebar.bounding_box()["x"] < 0  # off screen until opened
    shot(phone, "13-phone-overview")
    phone.get_by_role("button", name="Open navigation").click()
    expect(phone.get_by_role("button", name="Open navigation")).to_have_attribute("aria-expanded", "true")
    phone.wait_for_function("document.getElementById('sidebar').getBoundingClientRect().x >= 0")
    shot(phone, "14-phone-navigation", full_page=False)
    phone.get_by_role("navigation", name="Main").get_by_role("link", name="API keys", exact=True).click()
    expect(phone.get_by_role("heading", name="API keys", exact=True)).to_be_visible()
    context.close()
