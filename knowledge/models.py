"""Collections of documents, and the chunks they are split into for search. All tenant-owned.

Embedding dimensions. A collection records its embedding model and that model's dimension; the local
default (MiniLM) gives 384, an OpenAI-compatible model whatever it gives (768, 1024, 1536, ...). One chunk
table serves them all: ``Chunk.embedding`` is a ``vector`` column *without* a fixed dimension, ``Chunk.dimension``
says what each row holds, and every dimension we expect has its own partial HNSW index on the expression
``(embedding::vector(d))`` restricted to ``dimension = d`` (``INDEXED_DIMENSIONS``). A query casts to the
collection's dimension and repeats ``dimension = d`` literally, which lets the planner pick that index.

Why not one table per dimension: every search, delete and count would have to pick its table, foreign keys and
tenancy would be repeated per table, and the ORM would need a model per dimension. Why not a fixed ``vector(384)``
plus padding: padding changes cosine distances of nothing but costs 4 bytes per zero. The partial indexes cost
nothing while empty. A dimension outside ``INDEXED_DIMENSIONS`` (up to 2,000, pgvector's HNSW limit for
``vector``) still works: its searches scan the collection's rows exactly (fine up to tens of thousands of
chunks); adding a dimension is one more index in a migration. The HNSW indexes are created by SQL in
migration 0001, since an index on a cast expression is beyond Django's index classes.

Full text: each collection has a ``language``, a PostgreSQL text search configuration (``english``,
``portuguese``, ``spanish``, ..., or ``simple``: no stemming, no stop words). Each chunk carries a copy of it as a
``regconfig`` (``Chunk.language``), and ``Chunk.search_vector`` is a stored generated ``to_tsvector(language,
text)`` with a GIN index: the database keeps it in step with ``text``, and changing a collection's language is
one ``UPDATE`` of its chunks' ``language``. The column is a ``regconfig``, not text: a generated column needs an
immutable expression, and a text -> regconfig cast is not (it depends on ``search_path``). Collections created
before languages existed stay ``english``.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from django.db.models import F, Value
from django.utils import timezone
from pgvector.django import VectorField

from aivax.crypto import EncryptedTextField
from aivax.tenancy import TenantModel

LOCAL_EMBEDDING_MODEL = "local/all-minilm-l6-v2"
LOCAL_EMBEDDING_DIMENSION = 384
# Dimensions with their own HNSW index (see the module docstring).
INDEXED_DIMENSIONS = (384, 768, 1024, 1536)
MAX_DIMENSION = 2000
TEXT_SEARCH_CONFIG = "english"  # the default language, and what collections created before languages use
# PostgreSQL's built-in text search configurations (PostgreSQL 16+; `simple` only lowercases).
LANGUAGES = (
    "simple", "arabic", "armenian", "basque", "catalan", "danish", "dutch", "english", "finnish", "french",
    "german", "greek", "hindi", "hungarian", "indonesian", "irish", "italian", "lithuanian", "nepali", "norwegian",
    "portuguese", "romanian", "russian", "serbian", "spanish", "swedish", "tamil", "turkish", "yiddish",
)  # fmt: skip


class RegConfigField(models.TextField):
    """A PostgreSQL ``regconfig`` (a text search configuration), read and written as its name."""

    def db_type(self, connection: Any) -> str:
        return "regconfig"


class Collection(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    # The embedder: `local/all-minilm-l6-v2`, or a model name served at `embedding_base_url` (OpenAI-compatible).
    embedding_model = models.CharField(max_length=200, default=LOCAL_EMBEDDING_MODEL)
    embedding_dimension = models.PositiveSmallIntegerField(default=LOCAL_EMBEDDING_DIMENSION)
    embedding_base_url = models.URLField(blank=True, default="")
    embedding_api_key = EncryptedTextField(blank=True, default="")
    chunk_max_tokens = models.PositiveSmallIntegerField(default=254)
    chunk_overlap_tokens = models.PositiveSmallIntegerField(default=32)
    # The text search configuration of its full-text index and queries (one of LANGUAGES).
    language = models.CharField(max_length=32, default=TEXT_SEARCH_CONFIG)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="collection_org_created")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_local_embedding(self) -> bool:
        return self.embedding_model == LOCAL_EMBEDDING_MODEL and not self.embedding_base_url


class DocumentStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    PROCESSING = "processing", "Processing"
    INDEXED = "indexed", "Indexed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class SourceKind(models.TextChoices):
    TEXT = "text", "Text (API)"
    FILE = "file", "Uploaded file"


class Document(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="documents")
    name = models.CharField(max_length=300)
    reference = models.CharField(max_length=300, blank=True, default="")
    tags = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)

    source_kind = models.CharField(max_length=8, choices=SourceKind.choices, default=SourceKind.TEXT)
    file_kind = models.CharField(max_length=8, blank=True, default="", help_text="txt, md, html, pdf, docx, ...")
    file = models.FileField(upload_to="knowledge/%Y/%m/", blank=True, default="", max_length=300)
    content_type = models.CharField(max_length=200, blank=True, default="")
    size_bytes = models.PositiveBigIntegerField(default=0)
    # sha256 of what is embedded: the text for text documents, the file's bytes for files.
    content_hash = models.CharField(max_length=64)
    # Text documents: as given. Files: the extracted text once parsed (searchable by the content filter).
    content = models.TextField(blank=True, default="")

    status = models.CharField(max_length=12, choices=DocumentStatus.choices, default=DocumentStatus.QUEUED)
    failure_reason = models.TextField(blank=True, default="")
    progress = models.PositiveSmallIntegerField(default=0)
    chunk_count = models.PositiveIntegerField(default=0)
    token_count = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    indexed_model = models.CharField(max_length=200, blank=True, default="")

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    processing_started_at = models.DateTimeField(null=True, blank=True)
    indexed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["collection", "name"], name="document_name_unique")]
        indexes = [
            models.Index(fields=["collection", "status"], name="document_collection_status"),
            models.Index(fields=["collection", "reference"], name="document_collection_ref"),
            models.Index(fields=["status", "processing_started_at"], name="document_status_started"),
            GinIndex(fields=["tags"], name="document_tags"),
        ]

    def __str__(self) -> str:
        return self.name


class Chunk(TenantModel):
    """A piece of a document as embedded and searched. ``organization`` and ``collection`` are copies of the
    document's, so that searches filter on this table alone."""

    id = models.BigAutoField(primary_key=True)
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="+")
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    position = models.PositiveIntegerField()
    text = models.TextField()
    token_count = models.PositiveIntegerField()
    dimension = models.PositiveSmallIntegerField()
    embedding = VectorField()
    language = RegConfigField(db_default=Value(TEXT_SEARCH_CONFIG))  # the collection's, copied (see the docstring)
    search_vector = models.GeneratedField(
        expression=SearchVector("text", config=F("language")),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["document", "position"]
        indexes = [
            models.Index(fields=["collection", "dimension"], name="chunk_collection_dim"),
            models.Index(fields=["document", "position"], name="chunk_document_position"),
            GinIndex(fields=["search_vector"], name="chunk_search_vector"),
        ]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.position}"
