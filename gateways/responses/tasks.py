"""Celery tasks of the Responses API (registered through CELERY_IMPORTS)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="gateways.responses_delete_expired", ignore_result=True)
def responses_delete_expired() -> int:
    from gateways.responses.services import responses_delete_expired as delete_expired

    return delete_expired()
