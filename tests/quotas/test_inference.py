"""Rate limits on the inference API, through the live ASGI server: requests per minute, requests per day and
tokens per minute at each level (key, organization, plan), exact 429s with Retry-After, OpenAI's x-ratelimit-*
headers, nothing reserved or billed for a refused request, and the playground."""

from __future__ import annotations

import re

import pytest

from accounts.models import Organization
from billing.models import BilledRequest, Reservation
from gateways.chat import console_chat_stream
from tests.quotas.conftest import DEFAULT_TOKENS_PER_MINUTE, post_chat, set_limit

pytestmark = pytest.mark.django_db(transaction=True)

LEVEL_WORDS = {"key": "for this API key", "organization": "for this organization", "plan": "organization's plan"}
RESET = re.compile(r"^(\d+ms|\d+s|\d+m\d+s|\d+h\d+m\d+s)$")


def _ask(gateway) -> dict:
    return {"model": gateway.slug, "messages": [{"role": "user", "content": "hello there"}]}


@pytest.mark.parametrize("level", ["key", "organization", "plan"])
@pytest.mark.parametrize(("field", "per"), [("requests_per_minute", "minute"), ("requests_per_day", "day")])
def test_requests_limit_at_each_level(
    live_asgi, api_key, gateway, default_plan, stub, upstream_model, level, field, per
):
    set_limit(level, field, 2, key=api_key.key, organization=Organization.objects.get(pk=gateway.organization_id))
    responses = [post_chat(live_asgi, api_key.raw, _ask(gateway)) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert [r.headers["x-ratelimit-remaining-requests"] for r in responses] == ["1", "0", "0"]
    assert all(r.headers["x-ratelimit-limit-requests"] == "2" for r in responses)
    refused = responses[-1]
    error = refused.json()["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "rate_limit_exceeded"
    assert f"2 requests per {per}" in error["message"] and LEVEL_WORDS[level] in error["message"]
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= (60 if per == "minute" else 86_400)
    assert len(stub.app.requests_for(upstream_model)) == 2  # the refused request never reached the model


@pytest.mark.parametrize("level", ["key", "organization", "plan"])
def test_tokens_per_minute_at_each_level_counts_the_real_total(
    live_asgi, api_key, gateway, default_plan, stub, upstream_model, level
):
    stub.app.script(upstream_model, content="word " * 120)
    probe = post_chat(live_asgi, api_key.raw, _ask(gateway))  # under the default plan's limits
    assert probe.status_code == 200
    estimate = DEFAULT_TOKENS_PER_MINUTE - int(probe.headers["x-ratelimit-remaining-tokens"])
    total = probe.json()["usage"]["total_tokens"]
    assert 0 < estimate < total  # the prompt estimate at admission, then the real count afterwards

    # Room for exactly two requests: the first counts `total` once settled, the second needs `estimate` more.
    limit = 2 * total
    set_limit(
        level,
        "tokens_per_minute",
        limit,
        key=api_key.key,
        organization=Organization.objects.get(pk=gateway.organization_id),
    )
    first = post_chat(live_asgi, api_key.raw, _ask(gateway))
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit-tokens"] == str(limit)
    assert first.headers["x-ratelimit-remaining-tokens"] == str(limit - estimate)
    assert RESET.match(first.headers["x-ratelimit-reset-tokens"])
    second = post_chat(live_asgi, api_key.raw, _ask(gateway))
    assert second.status_code == 200  # total + estimate <= 2 * total
    third = post_chat(live_asgi, api_key.raw, _ask(gateway))
    assert third.status_code == 429  # 2 * total already counted: the corrections were added
    assert "tokens per minute" in third.json()["error"]["message"]
    assert LEVEL_WORDS[level] in third.json()["error"]["message"]
    assert int(third.headers["Retry-After"]) >= 1


def test_headers_on_every_inference_response_including_streams(live_asgi, api_key, gateway, default_plan):
    response = post_chat(live_asgi, api_key.raw, {**_ask(gateway), "stream": True})
    assert response.status_code == 200 and response.text.rstrip().endswith("data: [DONE]")
    assert response.headers["x-ratelimit-limit-requests"] == "600"
    assert response.headers["x-ratelimit-remaining-requests"] == "599"
    assert RESET.match(response.headers["x-ratelimit-reset-requests"])
    assert response.headers["x-ratelimit-limit-tokens"] == str(DEFAULT_TOKENS_PER_MINUTE)
    assert int(response.headers["x-ratelimit-remaining-tokens"]) < DEFAULT_TOKENS_PER_MINUTE
    assert RESET.match(response.headers["x-ratelimit-reset-tokens"])


def test_a_refused_request_reserves_and_bills_nothing(live_asgi, api_key, gateway, default_plan):
    set_limit("key", "requests_per_minute", 1, key=api_key.key, organization=gateway.organization)
    assert post_chat(live_asgi, api_key.raw, _ask(gateway)).status_code == 200
    billed = BilledRequest.unscoped.filter(organization_id=gateway.organization_id).count()
    reservations = Reservation.unscoped.filter(organization_id=gateway.organization_id).count()
    assert post_chat(live_asgi, api_key.raw, _ask(gateway)).status_code == 429
    assert BilledRequest.unscoped.filter(organization_id=gateway.organization_id).count() == billed
    assert Reservation.unscoped.filter(organization_id=gateway.organization_id).count() == reservations


def test_a_request_larger_than_the_tokens_limit_is_told_so(live_asgi, api_key, gateway, default_plan):
    set_limit("key", "tokens_per_minute", 3, key=api_key.key, organization=gateway.organization)
    response = post_chat(live_asgi, api_key.raw, _ask(gateway))
    assert response.status_code == 429
    assert response.json()["error"]["message"].startswith("Request too large")


async def test_the_playground_is_limited_by_the_organization_and_its_plan(gateway, owner, default_plan):
    from asgiref.sync import sync_to_async

    org = await Organization.objects.aget(pk=gateway.organization_id)
    await sync_to_async(set_limit)("organization", "requests_per_minute", 1, key=None, organization=org)
    payload = {"messages": [{"role": "user", "content": "hi"}], "model": str(gateway.pk)}
    first = await console_chat_stream(organization_id=org.pk, user_id=owner.pk, payload=payload)
    assert first.status_code == 200 and first["x-ratelimit-remaining-requests"] == "0"
    async for _ in first.streaming_content:  # let it settle
        pass
    second = await console_chat_stream(organization_id=org.pk, user_id=owner.pk, payload=payload)
    assert second.status_code == 429
    assert int(second["Retry-After"]) >= 1
    assert "for this organization" in second.content.decode()


def test_another_process_and_the_web_server_share_the_key_counter(live_asgi, api_key, gateway, default_plan):
    """Another process (as a second web server would) takes 2 of the key's 3 requests per minute."""
    import os
    import subprocess
    import sys
    import textwrap

    set_limit("key", "requests_per_minute", 3, key=api_key.key, organization=gateway.organization)
    script = textwrap.dedent(
        f"""
        import django
        django.setup()
        from quotas.limiter import SyncLimiter
        from quotas.policy import Limits, limits_at
        limits = limits_at("key", {str(api_key.key.pk)!r}, Limits(requests_per_minute=3), ("requests",))
        wants = [(limit, 1) for limit in limits]
        print(sum(SyncLimiter().admit(wants).allowed for _ in range(2)))
        """
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "aivax.settings.test"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2"
    statuses = [post_chat(live_asgi, api_key.raw, _ask(gateway)).status_code for _ in range(2)]
    assert statuses == [200, 429]
