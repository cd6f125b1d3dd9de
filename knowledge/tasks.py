"""Celery tasks of the knowledge app. They take ids, call the ingestion service, and own the retry policy."""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_process_init


@shared_task(
    name="knowledge.ingest_document",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=5,
    # Below the sweeper's stale limit (KNOWLEDGE_STALE_SECONDS, 30 minutes): a task still running is never
    # taken for a dead one.
    soft_time_limit=20 * 60,
    time_limit=25 * 60,
)
def ingest_document(self, document_id: str, content_hash: str) -> str:
    from aivax.metrics import record_document
    from knowledge.ingestion import RetryLater, document_ingest

    try:
        return record_document(document_ingest(document_id=document_id, content_hash=content_hash).status)
    except RetryLater as exc:
        # The document is queued again; the retried message claims it like a new one.
        raise self.retry(exc=exc, countdown=min(300, 10 * 2**self.request.retries)) from exc


@shared_task(
    name="knowledge.ingest_documents",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=5,
    soft_time_limit=20 * 60,
    time_limit=25 * 60,
)
def ingest_documents(self, jobs: list[list[str]]) -> dict[str, int]:
    """A batch of ``[document_id, content_hash]`` pairs, embedded together (knowledge.ingestion.documents_ingest)."""
    from aivax.metrics import record_document
    from knowledge.ingestion import RetryLater, documents_ingest

    try:
        outcomes = documents_ingest(jobs=[(str(i), str(h)) for i, h in jobs])
    except RetryLater as exc:
        # The stopped documents are queued again; the retried message claims them (and only them) again.
        raise self.retry(exc=exc, countdown=min(300, 10 * 2**self.request.retries)) from exc
    counts: dict[str, int] = {}
    for outcome in outcomes.values():
        record_document(outcome.status)
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    return counts


@shared_task(name="knowledge.requeue_stale_documents", ignore_result=True)
def requeue_stale_documents() -> dict[str, int]:
    from knowledge.sweep import documents_requeue_stale

    result = documents_requeue_stale()
    return {"requeued": result.requeued, "failed": result.failed, "resent": result.resent}


@worker_process_init.connect
def _load_embedding_model(**_kwargs: object) -> None:
    """Load the local model in each worker process after the fork (onnxruntime does not survive a fork)."""
    from knowledge.providers import local_embedder

    try:
        local_embedder().load()
    except Exception:  # a missing model shows up as failed documents with the reason, not a dead worker
        import logging

        logging.getLogger(__name__).exception("could not preload the local embedding model")
