"""The sweeper: reservations still held long after any request could still be running (a crashed web process)."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing import locks
from billing.models import Reservation, ReservationStatus
from billing.money import ZERO
from billing.services import pending
from billing.services.accounts import account_apply


def stale_after() -> timedelta:
    """`BILLING_RESERVATION_TTL_SECONDS`, else the longest an upstream call may take plus five minutes."""
    seconds = getattr(settings, "BILLING_RESERVATION_TTL_SECONDS", None)
    if seconds is None:
        seconds = float(getattr(settings, "UPSTREAM_TOTAL_TIMEOUT", 600)) + 300
    return timedelta(seconds=float(seconds))


def reservations_release_stale(*, older_than: timedelta | None = None, batch_size: int = 500) -> int:
    """Release held reservations older than `older_than`; return how many. A later settle still bills.

    Settlements kept while the database was away (billing/services/pending.py) are written first, so the holds
    of delivered answers are settled rather than released (were one released first, its settle would still
    bill it: the money is exact either way)."""
    pending.drain()
    cutoff = timezone.now() - (older_than if older_than is not None else stale_after())
    with transaction.atomic():
        stale = locks.stale_reservations(cutoff=cutoff, limit=batch_size)
        if not stale:
            return 0
        Reservation.unscoped.filter(pk__in=[r.pk for r in stale]).update(
            status=ReservationStatus.RELEASED, closed_at=timezone.now()
        )
        per_org: dict[int, Decimal] = defaultdict(lambda: ZERO)
        for reservation in stale:
            per_org[reservation.organization_id] += reservation.amount
        for organization_id in sorted(per_org):
            account_apply(organization_id=organization_id, reserved_delta=-per_org[organization_id])
    return len(stale)
