"""Upload documents by drag and drop, watch them become indexed on a real Celery worker, search them, and get a
grounded answer in the playground that cites them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from celery.contrib.testing.worker import start_worker
from playwright.sync_api import Page, expect

from aivax.celery import app as celery_app
from gateways.models import Gateway
from knowledge.models import Document, DocumentStatus
from tests.browser.conftest import nav, shot, sign_in

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators"),
]

FILES = {
    "refunds.md": "# Refunds\n\nCustomers may return any product within thirty days for a full refund.",
    "shipping.txt": "Shipping is free for orders above fifty dollars. Parcels leave the warehouse within two days.",
}
DROP_FILES = """(files) => {
    const transfer = new DataTransfer();
    for (const [name, text] of Object.entries(files)) transfer.items.add(new File([text], name, {type: "text/plain"}));
    const zone = document.getElementById("upload-form");
    zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: transfer, bubbles: true, cancelable: true}));
    zone.dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
}"""


@pytest.fixture
def worker() -> Iterator[None]:
    """A real Celery worker (solo pool, in a thread) consuming this test run's queue on Redis."""
    with start_worker(celery_app, pool="solo", concurrency=1, perform_ping_check=False, loglevel="WARNING"):
        yield


def test_upload_index_search_and_ground(page: Page, owner, org, live_gateway, stub, upstream_model, worker) -> None:
    sign_in(page, "owner@acme.test", "pw-owner-123!")
    nav(page, "Knowledge")
    page.get_by_label("Collection name").fill("Handbook")
    page.get_by_role("button", name="Create collection").click()
    expect(page.get_by_role("heading", name="Handbook")).to_be_visible()

    page.evaluate(DROP_FILES, FILES)
    rows = page.locator("#documents tbody tr")
    expect(rows).to_have_count(2)
    shot(page, "15-knowledge-uploading")
    for name in FILES:
        row = page.locator(f'#documents tr[data-document="{name}"]')
        expect(row).to_have_attribute("data-status", "indexed", timeout=60_000)
        expect(row).to_contain_text("Indexed")
    assert set(Document.objects.for_org(org).values_list("status", flat=True)) == {DocumentStatus.INDEXED}
    expect(page.locator("#documents")).not_to_have_attribute("hx-trigger", "every 1s")  # polling stopped

    page.get_by_label("Search this collection").fill("How long do I have to return a product?")
    page.get_by_role("button", name="Search", exact=True).click()
    first = page.locator("#search-results .result").first
    expect(first).to_contain_text("refunds.md")
    assert 0 < float(first.locator(".score").inner_text()) <= 1
    shot(page, "16-knowledge-indexed-search")

    # Ground the gateway on it and ask in the playground: the answer cites the document.
    page.goto(f"/console/gateways/{live_gateway.pk}/edit")
    page.get_by_label("Knowledge collection").select_option(label="Handbook")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("heading", name="Stub bot")).to_be_visible()
    assert Gateway.objects.for_org(org).get().knowledge_collection.name == "Handbook"

    stub.app.script(upstream_model, content="You have thirty days to return it.")
    page.goto(f"/console/gateways/{live_gateway.pk}/playground")
    page.get_by_label("Message").fill("How long do I have to return a product?")
    page.get_by_role("button", name="Send").click()
    answer = page.locator('.msg-assistant[data-done="true"]')
    expect(answer.locator(".bubble")).to_have_text("You have thirty days to return it.")
    expect(answer.locator(".documents")).to_contain_text("refunds.md")
    sent = stub.app.requests_for(upstream_model)[-1]["messages"]
    assert any("thirty days for a full refund" in str(m.get("content")) for m in sent)
    shot(page, "17-playground-grounded", full_page=False)

    nav(page, "Knowledge")
    expect(page.get_by_role("link", name="Handbook")).to_be_visible()
    expect(page.locator("table")).to_contain_text("2 indexed")
    shot(page, "18-knowledge-list")
