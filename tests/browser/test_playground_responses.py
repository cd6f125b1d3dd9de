"""The playground's API switch in a real browser: the Responses API's events render like chat chunks."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import sign_in

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators"),
]


def test_playground_through_the_responses_api(page: Page, owner, live_gateway, stub, upstream_model) -> None:
    stub.app.script(upstream_model, content="Answered through the Responses API", chunk_delay=0.05)
    sign_in(page, "owner@acme.test", "pw-owner-123!")
    page.goto(f"/console/gateways/{live_gateway.pk}/playground")
    page.get_by_label("API").select_option("responses")
    page.get_by_label("Message").fill("Which API?")
    with page.expect_response(lambda r: r.url.endswith("/playground/chat")) as sent_request:
        page.get_by_role("button", name="Send").click()
    answer = page.locator('.msg-assistant[data-done="true"]')
    expect(answer.locator(".bubble")).to_have_text("Answered through the Responses API")
    expect(answer.locator("table.billed")).to_contain_text("Total")
    expect(answer.locator(".meta")).to_contain_text("5 completion tokens")
    assert "event: response.completed" in sent_request.value.text()
    # The second turn carries the first (the playground keeps the conversation and sends it as input items).
    page.get_by_label("Message").fill("Again")
    page.keyboard.press("Enter")
    expect(page.locator('.msg-assistant[data-done="true"]')).to_have_count(2)
    sent = stub.app.requests_for(upstream_model)[-1]["messages"]
    assert [m["role"] for m in sent if m["role"] != "system"] == ["user", "assistant", "user"]
