"""Grounding through the Responses API: the same service as chat completions, so the same documents, server-side
functions and billed lines; cited documents become `file_citation` annotations on the output text."""

from __future__ import annotations

import pytest

from gateways.grounding import SEARCH_TOOL_NAME
from tests.gateways.test_query_function import query_function_gateway  # noqa: F401
from tests.knowledge.conftest import collection, funded_org, index_queued, knowledge_prices  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("stream", [False, True])
def test_grounded_answer_has_citations_and_generation_context(
    client,
    query_function_gateway,  # noqa: F811
    stub,
    upstream_model,
    stream,
) -> None:
    model = query_function_gateway.slug
    if stream:
        with client.responses.stream(model=model, input="How is espresso made?") as events:
            response = events.get_final_response()
    else:
        response = client.responses.create(model=model, input="How is espresso made?")
    assert "9 bar" in response.output_text
    assert [item.type for item in response.output] == ["message"]  # the search tool call stays server-side
    part = response.output[0].content[0]
    citation = part.annotations[0]
    assert (citation.type, citation.filename, citation.index) == ("file_citation", "coffee", len(part.text))
    assert citation.model_extra["document_citation"]["document_name"] == "coffee"
    context = response.model_extra["generation_context"]
    assert [f["function_name"] for f in context["runned_functions"]] == [SEARCH_TOOL_NAME]
    assert context["documents"][0]["documentName"] == "coffee"
    assert "knowledge.search" in {line["sku"] for line in context["generated_usage"]}
