"""Prices, prepaid accounts, reservations, the append-only ledger and the per-request summary.

Money fields are Decimal(20, 10). A ledger row carries both the line's `amount` (as shown to the caller, never
negative) and its `balance_delta` (its signed effect on the balance), so the balance is always `SUM(balance_delta)`.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from aivax.tenancy import TenantModel
from billing.money import MONEY_MAX_DIGITS, MONEY_PLACES, ZERO


def money_field(**kwargs: Any) -> models.DecimalField:
    return models.DecimalField(max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_PLACES, **kwargs)


class Price(models.Model):
    """A unit price for one SKU, per catalog model (or platform-wide when `catalog_model` is null), from a date on."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    catalog_model = models.ForeignKey(
        "gateways.CatalogModel", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    sku = models.CharField(max_length=100)
    unit_price = money_field(validators=[MinValueValidator(ZERO)], help_text="USD per unit (token, search, ...)")
    effective_from = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["catalog_model__name", "sku", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["catalog_model", "sku", "effective_from"], nulls_distinct=False, name="price_unique_version"
            ),
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.unit_price} from {self.effective_from:%Y-%m-%d}"


class BillingAccount(TenantModel):
    """One per organization. Spendable = balance - reserved + credit_limit. Changed only with F() updates."""

    balance = money_field(default=ZERO)
    reserved = money_field(default=ZERO)
    credit_limit = money_field(default=ZERO, help_text="The balance may go down to -credit_limit")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="billing_account_one_per_org"),
            models.CheckConstraint(condition=Q(credit_limit__gte=0), name="billing_account_credit_limit_gte_0"),
            models.CheckConstraint(condition=Q(reserved__gte=0), name="billing_account_reserved_gte_0"),
        ]

    def __str__(self) -> str:
        return f"Billing account of organization {self.organization_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # A full-row save would write back a stale balance over concurrent F() updates.
        if not self._state.adding and kwargs.get("update_fields") is None:
            raise RuntimeError("BillingAccount rows change through billing.services (F() updates), not save()")
        super().save(*args, **kwargs)

    @property
    def available(self) -> Any:
        return self.balance - self.reserved + self.credit_limit


class ReservationStatus(models.TextChoices):
    HELD = "held", "Held"
    SETTLED = "settled", "Settled"
    RELEASED = "released", "Released"


class Reservation(TenantModel):
    """An estimate held against the balance while a request runs; settled, released, or swept when stale."""

    request_id = models.CharField(max_length=100, unique=True)
    amount = money_field()
    # Who the hold counts against, for monthly budgets (billing.services.holds).
    api_key_id = models.UUIDField(null=True, blank=True)
    gateway_id = models.UUIDField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=ReservationStatus.choices, default=ReservationStatus.HELD)
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["created_at"], condition=Q(status="held"), name="reservation_held_created"),
            models.Index(fields=["organization"], condition=Q(status="held"), name="reservation_held_org"),
        ]
        constraints = [models.CheckConstraint(condition=Q(amount__gte=0), name="reservation_amount_gte_0")]

    def __str__(self) -> str:
        return f"{self.request_id} {self.amount} ({self.status})"


class EntryKind(models.TextChoices):
    CHARGE = "charge", "Charge"
    CREDIT = "credit", "Credit"
    REVERSAL = "reversal", "Reversal"


class LedgerEntry(TenantModel):
    """Append-only: never updated or deleted (enforced here, in the admin, and by a PostgreSQL trigger)."""

    kind = models.CharField(max_length=10, choices=EntryKind.choices)
    request_id = models.CharField(max_length=100)
    position = models.PositiveSmallIntegerField(default=0, help_text="Order of the line within its request")
    sku = models.CharField(max_length=100)
    quantity = models.BigIntegerField(default=0)
    unit_price = money_field(default=ZERO)
    amount = money_field(help_text="The line's amount as billed (never negative)")
    balance_delta = money_field(help_text="Signed effect on the balance: -amount for charges, +amount for credits")
    description = models.CharField(max_length=300, blank=True, default="")
    estimated = models.BooleanField(default=False)
    gateway_id = models.UUIDField(null=True, blank=True)
    api_key_id = models.UUIDField(null=True, blank=True)
    model = models.CharField(max_length=200, blank=True, default="")
    reason = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reverses = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversals")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "ledger entries"
        indexes = [
            models.Index(fields=["organization", "created_at"], name="ledger_org_created"),
            models.Index(fields=["created_at"], name="ledger_created"),
            models.Index(fields=["request_id"], name="ledger_request"),
        ]
        constraints = [
            # A retried write cannot charge the same request twice for one SKU.
            models.UniqueConstraint(
                fields=["request_id", "sku"], condition=Q(kind="charge"), name="ledger_charge_once_per_sku"
            ),
            models.UniqueConstraint(fields=["request_id"], condition=Q(kind="credit"), name="ledger_credit_once"),
            models.UniqueConstraint(fields=["reverses"], condition=Q(kind="reversal"), name="ledger_reverse_once"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="ledger_amount_gte_0"),
            models.CheckConstraint(
                condition=(
                    Q(kind="charge", balance_delta=-F("amount"), reverses__isnull=True)
                    | Q(kind="credit", balance_delta=F("amount"), reverses__isnull=True)
                    | Q(kind="reversal", reverses__isnull=False)
                ),
                name="ledger_delta_matches_kind",
            ),
            models.CheckConstraint(
                condition=Q(kind="charge") | ~Q(reason=""), name="ledger_reason_required_for_staff_rows"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.request_id} {self.sku} {self.balance_delta}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise RuntimeError("Ledger entries are append-only: record a reversal instead of editing")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("Ledger entries are append-only: record a reversal instead of deleting")


# The columns a ledger entry is exported with after its id, in order: the staff CSV and the staff API.
LEDGER_EXPORT_COLUMNS = [
    "created_at",
    "organization",
    "kind",
    "request_id",
    "position",
    "sku",
    "quantity",
    "unit_price",
    "amount",
    "balance_delta",
    "estimated",
    "description",
    "model",
    "gateway_id",
    "api_key_id",
    "reason",
    "created_by",
    "reverses",
]


class BilledRequest(TenantModel):
    """One row per billed request, for drill-down and "recent requests". `total` = its charge lines' sum."""

    request_id = models.CharField(max_length=100, unique=True)
    gateway_id = models.UUIDField(null=True, blank=True)
    api_key_id = models.UUIDField(null=True, blank=True)
    model = models.CharField(max_length=200, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    total = money_field(default=ZERO)
    estimated = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="billed_request_org_recent"),
            # A key's or a gateway's spend this month (monthly budgets).
            models.Index(fields=["api_key_id", "created_at"], name="billed_request_key_month"),
            models.Index(fields=["gateway_id", "created_at"], name="billed_request_gateway_month"),
        ]

    def __str__(self) -> str:
        return self.request_id


class IdempotentRequest(TenantModel):
    """A request sent with an idempotency key: the first response, kept 24 hours and replayed to retries with the
    same key and body (gateways.idempotency). One row per (organization, key)."""

    key = models.CharField(max_length=255)
    body_hash = models.CharField(max_length=64)
    request_id = models.CharField(max_length=100)
    done = models.BooleanField(default=False)
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    streamed = models.BooleanField(default=False)
    response = models.BinaryField(null=True, blank=True, help_text="JSON body, or the SSE bytes of a stream")
    headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "key"], name="idempotent_request_once")]
        indexes = [models.Index(fields=["created_at"], name="idempotent_request_created")]

    def __str__(self) -> str:
        return self.key
