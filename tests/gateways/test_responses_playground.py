"""The console playground's API switch: the same endpoint, answered through the Responses API face."""

from __future__ import annotations

import json

import pytest

from tests.console.test_playground_live import _browser_like

pytestmark = pytest.mark.django_db(transaction=True)


def test_playground_speaks_responses_when_switched(live_asgi, owner, gateway, stub, upstream_model) -> None:
    client = _browser_like(live_asgi, owner)
    body = {"api": "responses", "messages": [{"role": "user", "content": "Tell me"}], "max_tokens": 40}
    headers = {"X-CSRFToken": client.cookies["csrftoken"], "Content-Type": "application/json"}
    url = f"/console/gateways/{gateway.pk}/playground/chat"
    with client.stream("POST", url, content=json.dumps(body), headers=headers) as response:
        assert response.status_code == 200, response.read()
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
    assert events[0]["type"] == "response.created"
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == "Echo: Tell me"
    final = events[-1]
    assert final["type"] == "response.completed" and final["response"]["store"] is False
    assert final["response"]["usage"]["output_tokens"] == 3
    assert final["response"]["generation_context"]["generated_usage"]
    assert stub.app.requests_for(upstream_model)[-1]["max_completion_tokens"] == 40


def test_playground_responses_errors_are_error_objects(live_asgi, owner, gateway) -> None:
    client = _browser_like(live_asgi, owner)
    body = {"api": "responses", "messages": [{"role": "tool", "content": "x"}]}
    headers = {"X-CSRFToken": client.cookies["csrftoken"], "Content-Type": "application/json"}
    response = client.post(f"/console/gateways/{gateway.pk}/playground/chat", content=json.dumps(body), headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "input[0].role"
