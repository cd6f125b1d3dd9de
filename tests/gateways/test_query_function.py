"""QueryFunction through the public API: the model calls the gateway's search tool, the gateway runs it
server-side, and the client sees only the final answer, the runned function and the documents used."""

from __future__ import annotations

import pytest

from gateways.grounding import SEARCH_TOOL_NAME
from gateways.services import gateway_create
from knowledge import services
from tests.knowledge.conftest import collection, funded_org, index_queued, knowledge_prices  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

CALL = {
    "id": "call_kb",
    "type": "function",
    "function": {"name": SEARCH_TOOL_NAME, "arguments": '{"query": "espresso pressure"}'},
}


@pytest.fixture
def query_function_gateway(funded_org, collection, catalog_model, stub, upstream_model):  # noqa: F811
    services.document_upsert(collection=collection, name="coffee", contents="Espresso is brewed at 9 bar of pressure.")
    services.document_upsert(collection=collection, name="tea", contents="Green tea is steeped at 80 degrees.")
    index_queued(collection)
    stub.app.script(upstream_model, tool_calls=[CALL], answer_after_tool=True, finish_reason="tool_calls")
    return gateway_create(
        organization=funded_org,
        name="KB",
        catalog_model=catalog_model,
        knowledge_collection=collection,
        query_strategy="QueryFunction",
    )


@pytest.mark.parametrize("stream", [False, True])
def test_query_function_runs_server_side(client, query_function_gateway, stub, upstream_model, stream) -> None:
    messages = [{"role": "user", "content": "How is espresso made?"}]
    if stream:
        chunks = list(
            client.chat.completions.create(
                model=query_function_gateway.slug,
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert all(not (c.choices and c.choices[0].delta.tool_calls) for c in chunks)
        context = chunks[-1].model_extra["generation_context"]
    else:
        completion = client.chat.completions.create(model=query_function_gateway.slug, messages=messages)
        content = completion.choices[0].message.content or ""
        assert not completion.choices[0].message.tool_calls
        context = completion.model_extra["generation_context"]
    assert "9 bar" in content  # the answer was written from the tool's result
    sent = stub.app.requests_for(upstream_model)
    assert sent[0]["tools"][0]["function"]["name"] == SEARCH_TOOL_NAME
    assert [f["function_name"] for f in context["runned_functions"]] == [SEARCH_TOOL_NAME]
    assert context["documents"][0]["documentName"] == "coffee"
    lines = {line["sku"]: line for line in context["generated_usage"]}
    assert len(context["generated_usage"]) == len(lines)  # one line per SKU: both model rounds add up
    assert "knowledge.search" in lines
    first_round, final_round = (r["messages"] for r in sent[:2])
    assert lines["inference.chat_completions.in"]["quantity"] == sum(
        len(str(m.get("content", "")).split()) + 3 for m in first_round + final_round
    )  # the stub's token count
