"""Which embedder a collection uses, built from its recorded settings.

The local model is one instance per process (it loads its ONNX session once, lazily, after any fork). A remote
(OpenAI-compatible) embedder connects through aivax.outbound under the tenant policy, like tenants' chat
endpoints: the collection's URL was checked when saved, and every connection's address is checked again.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

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

            threads = int(settings.KNOWLEDGE_EMBEDDING_THREADS or 0)
            _local = LocalMiniLMEmbedder(batch_size=16, threads=threads or None)
        return _local


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
