"""A public key in a real web page: Chromium on an allowed origin calls the inference API (CORS preflight, the
answer, a stream), and the same page on another origin is refused by the browser."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Browser, expect

from accounts.models import KeyKind
from accounts.services import api_key_create
from quotas.policy import Limits

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Shop</title></head>
<body><p id="out">waiting</p><p id="stream">waiting</p><p id="limit"></p>
<script>
const cfg = %(cfg)s;
const headers = {"Authorization": "Bearer " + cfg.key, "Content-Type": "application/json"};
const body = (stream) => JSON.stringify({model: cfg.model, messages: [{role: "user", content: "hi"}], stream});
async function run() {
  try {
    const r = await fetch(cfg.api + "/chat/completions", {method: "POST", headers, body: body(false)});
    const data = await r.json();
    document.getElementById("limit").textContent = r.headers.get("x-ratelimit-limit-requests");
    document.getElementById("out").textContent = r.status + " " + data.choices[0].message.content;
    const s = await fetch(cfg.api + "/chat/completions", {method: "POST", headers, body: body(true)});
    document.getElementById("stream").textContent = (await s.text()).includes("data: [DONE]") ? "streamed" : "broken";
  } catch (e) {
    document.getElementById("out").textContent = "blocked: " + e.name;
  }
}
run();
</script></body></html>"""


class _PageHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(self.server.html)  # type: ignore[attr-defined]

    def log_message(self, *args: object) -> None:
        pass


def _site() -> tuple[ThreadingHTTPServer, str]:
    """A web server on its own loopback port: its own browser origin."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def sites(live_asgi, org, live_gateway) -> Iterator[tuple[str, str]]:
    (shop, shop_origin), (other, other_origin) = _site(), _site()
    key = api_key_create(
        organization=org,
        name="shop widget",
        kind=KeyKind.PUBLIC,
        scopes=["inference"],
        allowed_gateway_ids=[live_gateway.pk],
        allowed_origins=[shop_origin],
        limits=Limits(requests_per_minute=30),
    )
    cfg = {"api": f"{live_asgi.url}/api/v1", "key": key.raw, "model": live_gateway.slug}
    shop.html = other.html = (PAGE % {"cfg": json.dumps(cfg)}).encode()  # type: ignore[attr-defined]
    yield shop_origin, other_origin
    for server in (shop, other):
        server.shutdown()
        server.server_close()


def test_a_public_key_works_from_its_origin_and_not_from_another(browser: Browser, sites, stub, upstream_model) -> None:
    shop_origin, other_origin = sites
    context = browser.new_context()
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        page.goto(shop_origin + "/")
        expect(page.locator("#out")).to_have_text("200 Echo: hi")
        expect(page.locator("#stream")).to_have_text("streamed")
        expect(page.locator("#limit")).to_have_text("30")  # exposed to the page by CORS
        answered = len(stub.app.requests_for(upstream_model))
        assert answered == 2

        page.goto(other_origin + "/")
        expect(page.locator("#out")).to_have_text("blocked: TypeError")  # the browser refuses the response
        assert len(stub.app.requests_for(upstream_model)) == answered  # and no model was called for it
    finally:
        context.close()
