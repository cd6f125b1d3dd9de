"""`manage.py release_stale_reservations`: what the beat task does, for operators without Celery beat."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Release held reservations older than the reservation TTL (a crashed web process)."

    def handle(self, *args: Any, **options: Any) -> None:
        from billing.services import reservations_release_stale

        total = 0
        while released := reservations_release_stale():
            total += released
        self.stdout.write(f"Released {total} stale reservation(s).")
