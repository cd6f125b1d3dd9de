"""Knowledge reads, always inside one organization. Not found and not yours look the same (a 404)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import connection
from django.db.models import Count, Q, QuerySet

from accounts.models import Organization
from aivax.tenancy import get_for_org_or_404
from knowledge.models import Collection, Document, DocumentStatus

OrgRef = Organization | int


def collection_list(*, organization: OrgRef) -> QuerySet[Collection]:
    return Collection.objects.for_org(organization).order_by("-created_at", "id")


def collection_get(*, organization: OrgRef, collection_id: uuid.UUID | str) -> Collection:
    return get_for_org_or_404(Collection, organization, pk=collection_id)


@dataclass(frozen=True)
class CollectionState:
    queued: int  # queued or processing: waiting to become searchable
    processing: int
    indexed: int
    failed: int
    cancelled: int
    chunks: int
    outdated: int = 0  # indexed with another model than the collection's (a re-index to a new model in progress)

    def as_api(self) -> dict[str, int]:
        return {
            "queuedDocuments": self.queued,
            "processingDocuments": self.processing,
            "indexedDocuments": self.indexed,
            "failedDocuments": self.failed,
            "cancelledDocuments": self.cancelled,
            "chunks": self.chunks,
            "outdatedDocuments": self.outdated,
        }


def collection_state(*, collection: Collection) -> CollectionState:
    counts = (
        Document.objects.for_org(collection.organization_id)
        .filter(collection=collection)
        .aggregate(
            queued=Count("pk", filter=Q(status__in=[DocumentStatus.QUEUED, DocumentStatus.PROCESSING])),
            processing=Count("pk", filter=Q(status=DocumentStatus.PROCESSING)),
            indexed=Count("pk", filter=Q(status=DocumentStatus.INDEXED)),
            failed=Count("pk", filter=Q(status=DocumentStatus.FAILED)),
            cancelled=Count("pk", filter=Q(status=DocumentStatus.CANCELLED)),
            outdated=Count(
                "pk",
                filter=Q(status__in=[DocumentStatus.INDEXED, DocumentStatus.QUEUED, DocumentStatus.PROCESSING])
                & ~Q(indexed_model="")
                & ~Q(indexed_model=collection.embedding_model),
            ),
        )
    )
    chunks = (
        Document.objects.for_org(collection.organization_id)
        .filter(collection=collection, status=DocumentStatus.INDEXED)
        .values_list("chunk_count", flat=True)
    )
    return CollectionState(**counts, chunks=sum(chunks))


def collection_tags(*, collection: Collection, limit: int = 500) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT unnest(tags) AS tag FROM knowledge_document "
            "WHERE organization_id = %s AND collection_id = %s ORDER BY tag LIMIT %s",
            [collection.organization_id, collection.pk, limit],
        )
        return [row[0] for row in cursor.fetchall()]


def document_list(
    *,
    collection: Collection,
    tag: str | None = None,
    reference: str | None = None,
    name: str | None = None,
    content: str | None = None,
    status: str | None = None,
) -> QuerySet[Document]:
    """Documents of a collection, newest first. ``tag`` and ``reference`` match exactly; ``name`` and ``content``
    are case-insensitive substrings."""
    documents = Document.objects.for_org(collection.organization_id).filter(collection=collection)
    if tag:
        documents = documents.filter(tags__contains=[tag])
    if reference:
        documents = documents.filter(reference=reference)
    if name:
        documents = documents.filter(name__icontains=name)
    if content:
        documents = documents.filter(content__icontains=content)
    if status:
        documents = documents.filter(status=status)
    return documents.order_by("-created_at", "id")


def document_get(*, collection: Collection, document_id: uuid.UUID | str) -> Document:
    return get_for_org_or_404(Document, collection.organization_id, collection=collection, pk=document_id)


def page(queryset: QuerySet, *, number: int, size: int) -> tuple[list, bool]:
    """One page (1-based) and whether more follow, without counting the whole set."""
    number = max(1, number)
    start = (number - 1) * size
    rows = list(queryset[start : start + size + 1])
    return rows[:size], len(rows) > size
