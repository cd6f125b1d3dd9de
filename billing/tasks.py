"""Celery tasks of the billing app."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="billing.release_stale_reservations", ignore_result=True)
def release_stale_reservations() -> int:
    from billing.services import reservations_release_stale

    return reservations_release_stale()
