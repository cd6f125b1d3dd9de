"""Every row lock billing takes (`select_for_update`), in one place."""

from __future__ import annotations

from datetime import datetime

from billing.models import Reservation, ReservationStatus


def stale_reservations(*, cutoff: datetime, limit: int) -> list[Reservation]:
    """Held reservations created before `cutoff`, locked; rows a settle is closing right now are skipped."""
    return list(
        Reservation.unscoped.select_for_update(skip_locked=True)
        .filter(status=ReservationStatus.HELD, created_at__lt=cutoff)
        .order_by("created_at")[:limit]
    )
