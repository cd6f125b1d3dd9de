"""`manage.py grant_credit <org-slug> <amount> --reason "..." [--by staff@example.com]`: an audited credit."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Grant prepaid credit (USD) to an organization, with a reason, as a ledger row."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("organization", help="Organization slug")
        parser.add_argument("amount", help="USD, e.g. 25 or 12.50")
        parser.add_argument("--reason", required=True, help="Why (kept on the ledger row)")
        parser.add_argument("--by", default=None, help="Email of the billing staff member granting it")

    def handle(self, *args: Any, organization: str, amount: str, reason: str, by: str | None, **options: Any) -> None:
        from accounts.models import Organization, User
        from billing.services import credit_grant

        try:
            value = Decimal(amount)
        except InvalidOperation as exc:
            raise CommandError(f"Not an amount: {amount!r}") from exc
        org = Organization.objects.filter(slug=organization).first()
        if org is None:
            raise CommandError(f"No organization with slug {organization!r}")
        staff = None
        if by is not None:
            staff = User.objects.filter(email=by.lower()).first()
            if staff is None:
                raise CommandError(f"No user {by!r}")
        try:
            entry = credit_grant(organization=org, amount=value, reason=reason, staff_user=staff)
        except (ValidationError, PermissionDenied) as exc:
            raise CommandError("; ".join(getattr(exc, "messages", [str(exc)]))) from exc
        self.stdout.write(self.style.SUCCESS(f"Granted {entry.amount} USD to {org.slug} (entry {entry.pk})."))
