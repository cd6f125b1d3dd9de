"""Which embedder a collection uses, built from its recorded settings.

The local model is one instance per process (it loads its ONNX session once, lazily, after any fork). A remote
(OpenAI-compatible) embedder gets an httpx client whose connections go through the same address guard as
tenants' chat endpoints (gateways.outbound): private addresses are refused unless the operator allows them.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import httpcore
import httpx

from knowledge.embeddings import Embedder, LocalMiniLMEmbedder, OpenAICompatibleEmbedder, count_tokens

if TYPE_CHECKING:
    from knowledge.models import Collection

_local: LocalMiniLMEmbedder | None = None
_local_lock = threading.Lock()


def local_embedder() -> LocalMiniLMEmbedder:
    global _local
    with _local_lock:
        if _local is None:
            from django.conf import settings

            threads = int(getattr(settings, "KNOWLEDGE_EMBEDDING_THREADS", 0) or 0)
            _local = LocalMiniLMEmbedder(batch_size=16, threads=threads or None)
        return _local


class _GuardedSyncBackend(httpcore.SyncBackend):
    """Resolve, check every address, then connect to a checked one (DNS rebinding cannot slip through)."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        from gateways.outbound import _resolve, check_address

        try:
            addresses = _resolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}") from exc
        for address in addresses:
            check_address(host, address)
        return super().connect_tcp(
            addresses[0], port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )


def _guarded_client(timeout: float = 60.0) -> httpx.Client:
    transport = httpx.HTTPTransport(retries=0)
    transport._pool._network_backend = _GuardedSyncBackend()  # httpcore's documented extension point
    return httpx.Client(transport=transport, timeout=httpx.Timeout(timeout, connect=5.0), follow_redirects=False)


def embedder_for(collection: Collection) -> Embedder:
    """The embedder recorded on ``collection``: the local model, or its OpenAI-compatible endpoint."""
    if collection.is_local_embedding:
        return local_embedder()
    return OpenAICompatibleEmbedder(
        base_url=collection.embedding_base_url,
        api_key=collection.embedding_api_key or None,
        model=collection.embedding_model,
        dimension=collection.embedding_dimension,
        name=collection.embedding_model,
        http_client_factory=_guarded_client,
    )


def max_chunk_tokens(collection: Collection, embedder: Embedder) -> int:
    """The collection's chunk size, capped by what the embedder reads without truncating."""
    limit = getattr(embedder, "max_input_tokens", None)
    size = int(collection.chunk_max_tokens)
    return min(size, int(limit)) if limit else size


def token_counter() -> Any:
    """The counter chunks are measured with: MiniLM's word-pieces (for a remote model, a close, slightly high
    estimate of its BPE count)."""
    return count_tokens
