"""See usage after a request: the playground's answer shows up on the usage page, in the chart and the table."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import nav, shot, sign_in

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators"),
]


def test_usage_after_a_request(page: Page, owner, live_gateway, stub, upstream_model) -> None:
    stub.app.script(upstream_model, content="Billed words for the usage page")
    sign_in(page, "owner@acme.test", "pw-owner-123!")
    page.goto(f"/console/gateways/{live_gateway.pk}/playground")
    page.get_by_label("Message").fill("Hello")
    page.get_by_role("button", name="Send").click()
    expect(page.locator('.msg-assistant[data-done="true"] table.billed')).to_be_visible()

    nav(page, "Usage & balance")
    rows = page.locator("#recent-requests tbody tr:not(.lines-row)")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Stub bot")
    expect(rows.first).to_contain_text("console")
    expect(page.locator("#usage-chart")).to_have_attribute("data-ready", "true")
    expect(page.locator("#balance")).not_to_have_text("$10.00")
    rows.first.get_by_role("button", name="Lines").click()
    expect(page.locator("#lines-1")).to_contain_text("inference.chat_completions.out")
    shot(page, "10-usage")

    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    assert download.value.suggested_filename.startswith("aivax-usage-acme-")
