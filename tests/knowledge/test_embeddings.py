"""Embedders: the real local MiniLM model, and the OpenAI-compatible client against a real local HTTP server."""

from __future__ import annotations

import contextlib
import json
import math
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from knowledge.embeddings import (
    Embedder,
    EmbeddingError,
    LocalMiniLMEmbedder,
    OpenAICompatibleEmbedder,
    count_tokens,
    get_embedder,
)


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def norm(v: list[float]) -> float:
    return math.sqrt(sum(x * x for x in v))


# ---- local model


@pytest.fixture(scope="module")
def local() -> LocalMiniLMEmbedder:
    embedder = get_embedder("local/all-minilm-l6-v2")
    assert isinstance(embedder, LocalMiniLMEmbedder)
    return embedder


def test_local_vectors_shape_norm_and_billing(local: LocalMiniLMEmbedder) -> None:
    texts = ["The cat sat on the mat.", "Quarterly revenue grew by twelve percent."]
    result = local.embed(texts)
    assert isinstance(local, Embedder)
    assert local.name == "local/all-minilm-l6-v2"
    assert local.dimension == 384
    assert [len(v) for v in result.vectors] == [384, 384]
    assert all(abs(norm(v) - 1.0) < 1e-5 for v in result.vectors)
    assert all(isinstance(x, float) for x in result.vectors[0])
    # Billing counts every position the model processed: word-pieces plus [CLS] and [SEP].
    assert result.token_count == sum(count_tokens(t) + 2 for t in texts)


def test_local_semantics(local: LocalMiniLMEmbedder) -> None:
    cat, kitten, revenue, invoice, bill = local.embed(
        [
            "The cat sat on the mat.",
            "A kitten is resting on a rug.",
            "Quarterly revenue grew by twelve percent.",
            "How do I get a refund for my invoice?",
            "I was charged twice and want my money back.",
        ]
    ).vectors
    assert cosine(cat, kitten) > cosine(cat, revenue) + 0.3
    assert cosine(invoice, bill) > cosine(invoice, kitten) + 0.2
    assert 0.5 < cosine(cat, kitten) < 0.8  # the known all-MiniLM-L6-v2 value is ~0.61


def test_local_batch_equals_single_in_order(local: LocalMiniLMEmbedder) -> None:
    # Mixed lengths: the embedder sorts by length to batch, and must restore the caller's order.
    texts = ["short", "a much longer sentence about oceans, tides and the moon's gravity " * 5, "mid length text"]
    batched = local.embed(texts)
    singles = [local.embed([t]) for t in texts]
    for together, alone in zip(batched.vectors, singles, strict=True):
        assert max(abs(x - y) for x, y in zip(together, alone.vectors[0], strict=True)) < 1e-5
    assert batched.token_count == sum(s.token_count for s in singles)
    small_batches = LocalMiniLMEmbedder(batch_size=1).embed(texts)
    assert cosine(small_batches.vectors[1], batched.vectors[1]) > 0.99999


def test_local_truncates_to_256_positions(local: LocalMiniLMEmbedder) -> None:
    long_text = "word " * 1000
    assert count_tokens(long_text) == 1000  # the counter never truncates
    result = local.embed([long_text])
    assert result.token_count == 256
    assert abs(norm(result.vectors[0]) - 1.0) < 1e-5


def test_local_empty_input_and_type_check(local: LocalMiniLMEmbedder) -> None:
    assert local.embed([]).vectors == []
    assert local.embed([]).token_count == 0
    with pytest.raises(TypeError):
        local.embed("not a list")  # type: ignore[arg-type]


def test_model_loads_once_under_concurrency() -> None:
    # threads=1 is a fresh runtime key for this test; eight threads race to load it.
    embedders = [LocalMiniLMEmbedder(threads=1) for _ in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        runtimes = list(pool.map(lambda e: e._get_runtime(), embedders))
        vectors = list(pool.map(lambda e: e.embed(["same text"]).vectors[0], embedders))
    assert len({id(r) for r in runtimes}) == 1
    assert all(v == vectors[0] for v in vectors)


def test_broken_or_missing_model_file_is_an_embedding_error() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bad = Path(tmp) / "model.onnx"
        bad.write_bytes(b"not an onnx model")
        with pytest.raises(EmbeddingError, match="local embedding model failed"):
            LocalMiniLMEmbedder(model_path=bad, threads=3).embed(["x"])
        with pytest.raises(EmbeddingError, match="missing"):
            LocalMiniLMEmbedder(model_path=Path(tmp) / "absent.onnx", threads=3).embed(["x"])


def test_count_tokens_word_pieces() -> None:
    assert count_tokens("") == 0
    assert count_tokens("Hello world, this is a test.") == 8  # hello world , this is a test .
    assert count_tokens("tokenization") == 2  # token ##ization


# ---- OpenAI-compatible client against a real HTTP server on 127.0.0.1


@dataclass
class Upstream:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    mode: str = "ok"


def _vector_for(text: str) -> list[float]:
    # Deterministic and not normalised: the client must normalise.
    return [float(len(text)), 3.0, 0.0, 4.0]


class _Handler(BaseHTTPRequestHandler):
    upstream: Upstream

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
            self.wfile.write(raw)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        payload = json.loads(self.rfile.read(length))
        up = self.upstream
        up.requests.append({"path": self.path, "headers": dict(self.headers), "json": payload})
        texts = payload["input"]
        if up.mode == "unauthorized":
            self._send(401, {"error": {"message": "Incorrect API key provided: sk-test-SECRET-123.", "type": "auth"}})
        elif up.mode == "overloaded":
            self._send(503, b"<html>Service Unavailable</html>")
        elif up.mode == "redirect":
            self._send(307, {}, {"Location": f"{up.url}/elsewhere"})
        elif up.mode == "slow":
            time.sleep(0.6)
            self._send(200, {})
        elif up.mode == "wrong_dimension":
            self._send(200, {"data": [{"index": i, "embedding": [1.0, 0.0]} for i in range(len(texts))]})
        elif up.mode == "missing_vector":
            self._send(200, {"data": [{"index": 0, "embedding": _vector_for(texts[0])}]})
        elif up.mode == "zero_vector":
            self._send(200, {"data": [{"index": i, "embedding": [0.0] * 4} for i in range(len(texts))]})
        else:
            data = [{"object": "embedding", "index": i, "embedding": _vector_for(t)} for i, t in enumerate(texts)]
            body: dict[str, Any] = {"object": "list", "data": list(reversed(data)), "model": payload["model"]}
            if up.mode != "no_usage":
                words = sum(len(t.split()) for t in texts)
                body["usage"] = {"prompt_tokens": words, "total_tokens": words}
            self._send(200, body)


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.block_on_close = False
    up = Upstream(url=f"http://127.0.0.1:{server.server_address[1]}/v1")
    _Handler.upstream = up
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield up
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def remote(up: Upstream, **kwargs: Any) -> OpenAICompatibleEmbedder:
    options: dict[str, Any] = {"base_url": up.url + "/", "api_key": "sk-test-SECRET-123", "model": "emb-small"}
    options.update(kwargs)
    return OpenAICompatibleEmbedder(dimension=4, **options)


def test_remote_batches_orders_normalises_and_bills(upstream: Upstream) -> None:
    texts = ["a", "bb bb", "ccc", "dddd dddd dddd", "e"]
    result = remote(upstream, batch_size=2).embed(texts)
    assert [r["json"]["input"] for r in upstream.requests] == [["a", "bb bb"], ["ccc", "dddd dddd dddd"], ["e"]]
    first = upstream.requests[0]
    assert first["path"] == "/v1/embeddings"
    assert first["headers"]["Authorization"] == "Bearer sk-test-SECRET-123"
    assert first["json"]["model"] == "emb-small"
    assert first["json"]["encoding_format"] == "float"
    for text, vector in zip(texts, result.vectors, strict=True):
        raw = _vector_for(text)
        assert vector == pytest.approx([x / norm(raw) for x in raw])  # right vector for the right text
    assert result.token_count == 1 + 2 + 1 + 3 + 1


def test_remote_without_usage_estimates_tokens(upstream: Upstream) -> None:
    upstream.mode = "no_usage"
    assert remote(upstream).embed(["12345678", "x"]).token_count == 2 + 1


def test_remote_error_is_summarised_without_the_key(upstream: Upstream) -> None:
    upstream.mode = "unauthorized"
    embedder = remote(upstream)
    with pytest.raises(EmbeddingError) as info:
        embedder.embed(["hello"])
    message = str(info.value)
    assert "HTTP 401" in message
    assert "Incorrect API key provided" in message
    assert "SECRET" not in message
    assert "SECRET" not in repr(embedder)
    assert info.value.retryable is False


def test_remote_server_error_is_retryable(upstream: Upstream) -> None:
    upstream.mode = "overloaded"
    with pytest.raises(EmbeddingError, match="HTTP 503: Service Unavailable") as info:
        remote(upstream).embed(["hello"])
    assert info.value.retryable is True


def test_remote_does_not_follow_redirects(upstream: Upstream) -> None:
    upstream.mode = "redirect"
    with pytest.raises(EmbeddingError, match="redirect"):
        remote(upstream).embed(["hello"])
    assert len(upstream.requests) == 1  # the key was not re-sent to the Location


@pytest.mark.parametrize(
    ("mode", "match"),
    [
        ("wrong_dimension", "2-dimensional vectors; 4 were expected"),
        ("missing_vector", "1 vectors for 2 texts"),
        ("zero_vector", "zero or non-finite"),
    ],
)
def test_remote_bad_payloads(upstream: Upstream, mode: str, match: str) -> None:
    upstream.mode = mode
    with pytest.raises(EmbeddingError, match=match):
        remote(upstream).embed(["one", "two"])


def test_remote_timeout(upstream: Upstream) -> None:
    upstream.mode = "slow"
    started = time.monotonic()
    with pytest.raises(EmbeddingError, match="timed out") as info:
        remote(upstream, timeout=0.2).embed(["hello"])
    assert info.value.retryable is True
    assert time.monotonic() - started < 0.55


def test_remote_unreachable() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    embedder = OpenAICompatibleEmbedder(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-x", model="m", dimension=4)
    with pytest.raises(EmbeddingError, match=r"Could not reach the embedding service at 127\.0\.0\.1"):
        embedder.embed(["hello"])


def test_remote_uses_the_client_factory(upstream: Upstream) -> None:
    made: list[httpx.Client] = []

    def factory() -> httpx.Client:
        client = httpx.Client(headers={"X-Tenant": "acme"}, timeout=5, follow_redirects=False)
        made.append(client)
        return client

    remote(upstream, http_client_factory=factory).embed(["hi"])
    assert upstream.requests[0]["headers"]["X-Tenant"] == "acme"
    assert made[0].is_closed


def test_registry(upstream: Upstream) -> None:
    embedder = get_embedder("openai-compatible/emb-large", base_url=upstream.url, api_key=None, dimension=4)
    assert isinstance(embedder, OpenAICompatibleEmbedder)
    assert (embedder.name, embedder.model) == ("openai-compatible/emb-large", "emb-large")
    embedder.embed(["x"])
    assert "Authorization" not in upstream.requests[0]["headers"]
    with pytest.raises(EmbeddingError, match="Unknown embedder 'nope'"):
        get_embedder("nope")


def test_packaged_model_checksum_is_verified(monkeypatch: pytest.MonkeyPatch) -> None:
    import knowledge.embeddings as embeddings

    monkeypatch.setattr(embeddings, "_MINILM_SHA256", "0" * 64)
    with pytest.raises(EmbeddingError, match="checksum mismatch"):
        LocalMiniLMEmbedder(threads=5).embed(["x"])  # a fresh runtime key, so the file is checked again
