"""The playground endpoint against the real inference service and the stub upstream, over HTTP like a browser:
a session cookie and a CSRF header, no API key."""

from __future__ import annotations

import json

import httpx
import pytest
from django.test import Client

pytestmark = pytest.mark.django_db(transaction=True)


def _browser_like(live_asgi, user) -> httpx.Client:
    django_client = Client()
    django_client.force_login(user)
    client = httpx.Client(base_url=live_asgi.url, timeout=20)
    client.cookies.set("sessionid", django_client.cookies["sessionid"].value, domain="127.0.0.1")
    page = client.get("/console/playground/", follow_redirects=True)  # sets the CSRF cookie
    assert page.status_code == 200 and "csrftoken" in client.cookies
    return client


def test_streams_token_by_token_with_billed_lines(live_asgi, owner, live_gateway, stub, upstream_model) -> None:
    stub.app.script(upstream_model, content="Grounded answers are the best answers", chunk_delay=0.01)
    client = _browser_like(live_asgi, owner)
    body = {"messages": [{"role": "user", "content": "Tell me"}], "stream": True}
    headers = {"X-CSRFToken": client.cookies["csrftoken"], "Content-Type": "application/json"}
    url = f"/console/gateways/{live_gateway.pk}/playground/chat"
    events = []
    with client.stream("POST", url, content=json.dumps(body), headers=headers) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(line[6:])
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
    assert text == "Grounded answers are the best answers"
    assert sum(1 for c in chunks if c.get("choices") and c["choices"][0]["delta"].get("content")) > 3
    last = chunks[-1]
    assert last["usage"]["completion_tokens"] > 0
    skus = {line["sku"] for line in last["generation_context"]["generated_usage"]}
    assert "inference.chat_completions.out" in skus
    assert stub.app.requests_for(upstream_model)[-1]["stream"] is True


def test_without_csrf_header_is_refused(live_asgi, owner, live_gateway) -> None:
    client = _browser_like(live_asgi, owner)
    response = client.post(
        f"/console/gateways/{live_gateway.pk}/playground/chat",
        json={"messages": [{"role": "user", "content": "Hi"}]},
    )
    assert response.status_code == 403
