"""Chat in the playground: the answer streams in token by token, then its billed lines show."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import shot, sign_in

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators"),
]

ANSWER = "Our refund policy gives you thirty days to return any product in its original packaging"


def test_chat_streams_and_shows_the_bill(page: Page, owner, live_gateway, stub, upstream_model) -> None:
    stub.app.script(upstream_model, content=ANSWER, chunk_delay=0.12)
    sign_in(page, "owner@acme.test", "pw-owner-123!")
    page.goto(f"/console/gateways/{live_gateway.pk}/playground")
    page.get_by_label("Message").fill("What is the refund policy?")
    page.get_by_role("button", name="Send").click()

    streaming = page.locator(".msg-assistant.streaming .bubble")
    expect(streaming).to_contain_text("refund policy")  # part of the answer, while it is still streaming
    partial = streaming.inner_text()
    assert 0 < len(partial) < len(ANSWER)
    shot(page, "08-playground-streaming", full_page=False)

    answer = page.locator('.msg-assistant[data-done="true"]')
    expect(answer.locator(".bubble")).to_have_text(ANSWER)
    expect(answer.locator("table.billed")).to_contain_text("Total")
    expect(answer.locator(".meta")).to_contain_text("completion tokens")
    expect(answer.locator(".answered-by")).to_contain_text(f"Answered by @stub/{upstream_model}")
    shot(page, "09-playground-answer", full_page=False)

    # The conversation goes on with its history, and the reset button clears it.
    stub.app.script(upstream_model, content="You are welcome")
    page.get_by_label("Message").fill("Thanks")
    page.keyboard.press("Enter")
    expect(page.locator('.msg-assistant[data-done="true"]')).to_have_count(2)
    sent = stub.app.requests_for(upstream_model)[-1]["messages"]
    assert [m["role"] for m in sent if m["role"] != "system"] == ["user", "assistant", "user"]
    page.get_by_role("button", name="Reset conversation").click()
    expect(page.locator(".msg")).to_have_count(0)
    expect(page.get_by_role("heading", name="Say hello to Stub bot")).to_be_visible()


def test_chat_shows_errors(page: Page, owner, live_gateway, stub, upstream_model) -> None:
    stub.app.script(upstream_model, status=500)
    sign_in(page, "owner@acme.test", "pw-owner-123!")
    page.goto(f"/console/gateways/{live_gateway.pk}/playground")
    page.get_by_label("Message").fill("Hello?")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".msg-error")).to_be_visible()
    expect(page.get_by_role("button", name="Send")).to_be_enabled()
