"""The beat sweeper of the indexing queue: documents whose worker or message was lost go back in the queue
(knowledge.tasks.requeue_stale_documents runs it)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from knowledge.ingestion import max_attempts
from knowledge.models import Document, DocumentStatus
from knowledge.services import enqueue_indexing

logger = logging.getLogger(__name__)


def stale_after() -> timedelta:
    return timedelta(seconds=getattr(settings, "KNOWLEDGE_STALE_SECONDS", 1800))


@dataclass(frozen=True)
class SweepResult:
    requeued: int
    failed: int
    resent: int


def documents_requeue_stale(*, now: datetime | None = None) -> SweepResult:
    """Beat job. A document ``processing`` for longer than ``stale_after()`` lost its worker: queue it again, or
    fail it after ``max_attempts()``. A document ``queued`` for that long lost its message: send it again."""
    now = now or timezone.now()
    cutoff = now - stale_after()
    limit = max_attempts()
    with transaction.atomic():
        stuck = list(
            Document.unscoped.select_for_update(skip_locked=True).filter(
                status=DocumentStatus.PROCESSING, processing_started_at__lt=cutoff
            )[:1000]
        )
        give_up = [d.pk for d in stuck if d.attempts >= limit]
        retry = [d for d in stuck if d.attempts < limit]
        if give_up:
            Document.unscoped.filter(pk__in=give_up).update(
                status=DocumentStatus.FAILED,
                progress=0,
                failure_reason=(
                    f"Indexing did not finish after {limit} attempts (the worker stopped or ran out of time). "
                    "Upload the document again to retry."
                ),
            )
        if retry:
            Document.unscoped.filter(pk__in=[d.pk for d in retry]).update(
                status=DocumentStatus.QUEUED, progress=0, enqueued_at=now
            )
        lost = list(
            Document.unscoped.select_for_update(skip_locked=True).filter(
                status=DocumentStatus.QUEUED, enqueued_at__lt=cutoff
            )[:1000]
        )
        if lost:
            Document.unscoped.filter(pk__in=[d.pk for d in lost]).update(enqueued_at=now)
        enqueue_indexing(retry + lost)
    if stuck or lost:
        logger.info("knowledge sweep: %d requeued, %d failed, %d resent", len(retry), len(give_up), len(lost))
    return SweepResult(requeued=len(retry), failed=len(give_up), resent=len(lost))
