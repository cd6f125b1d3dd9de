"""`manage.py reconcile`: recompute every balance from the ledger; print drift per organization; exit 1 on drift."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Recompute every organization's balance from the ledger and report drift (expected 0)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--quiet-ok", action="store_true", help="Print only organizations with drift")

    def handle(self, *args: Any, quiet_ok: bool = False, **options: Any) -> None:
        from billing.services import reconcile_balances

        checks = reconcile_balances()
        drifting = [c for c in checks if not c.ok]
        for check in checks:
            if quiet_ok and check.ok:
                continue
            line = (
                f"{check.slug}: balance {check.balance:f} ledger {check.ledger_balance:f} drift {check.drift:f}; "
                f"reserved {check.reserved:f} held {check.held_reservations:f} drift {check.reserved_drift:f}"
            )
            self.stdout.write(self.style.SUCCESS(line) if check.ok else self.style.ERROR(line))
        self.stdout.write(f"{len(checks)} organization(s) checked, {len(drifting)} with drift.")
        if drifting:
            raise SystemExit(1)
