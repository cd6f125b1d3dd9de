"""The OpenAI Responses API through a gateway: the real OpenAI Python SDK, unchanged apart from base_url and
api_key, against our live ASGI server and the stub upstream."""

from __future__ import annotations

import json
from decimal import Decimal

import openai
import pytest
from pydantic import BaseModel

from billing.models import LedgerEntry
from gateways.responses.protocol import chat_request_id_for

pytestmark = pytest.mark.django_db(transaction=True)


def _ledger(response_id: str) -> list[tuple[str, int, Decimal]]:
    rows = LedgerEntry.unscoped.filter(request_id=chat_request_id_for(response_id)).order_by("sku")
    return [(r.sku, r.quantity, r.amount) for r in rows]


def _lines(generation_context: dict) -> list[tuple[str, int, Decimal]]:
    return sorted(
        (line["sku"], line["quantity"], Decimal(str(line["amount"]))) for line in generation_context["generated_usage"]
    )


@pytest.mark.parametrize("name_by", ["uuid", "slug"])
def test_create_text(client, gateway, name_by) -> None:
    model = str(gateway.pk) if name_by == "uuid" else gateway.slug
    response = client.responses.create(model=model, input="What is the capital of France?")
    assert response.id.startswith("resp_")
    assert response.object == "response" and response.status == "completed"
    assert response.output_text == "Echo: What is the capital of France?"
    message = response.output[0]
    assert message.type == "message" and message.role == "assistant" and message.id.startswith("msg_")
    assert message.content[0].type == "output_text" and message.content[0].annotations == []
    usage = response.usage
    assert usage.output_tokens == 7 and usage.total_tokens == usage.input_tokens + 7
    assert usage.input_tokens_details.cached_tokens == 0 and usage.output_tokens_details.reasoning_tokens == 0
    context = response.model_extra["generation_context"]
    assert _lines(context) == _ledger(response.id)
    assert response.model == gateway.catalog_model.name
