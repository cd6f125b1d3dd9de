"""Users, organizations (tenants), memberships with roles, and API keys."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from aivax.tenancy import TenantModel


class User(AbstractUser):
    """Custom from day one. Platform staff are `is_staff`; billing staff hold the `view_all_usage` permission."""

    email = models.EmailField("email address", unique=True)

    class Meta:
        permissions = [("view_all_usage", "Can review every organization's usage and billing")]

    def __str__(self) -> str:
        return self.email or self.username


def _limit(verbose_name: str) -> models.PositiveIntegerField:
    return models.PositiveIntegerField(verbose_name, null=True, blank=True, help_text="Empty: no limit at this level.")


class Organization(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Rate limits (quotas/): the plan's and the organization's own both apply. No plan: the default plan.
    plan = models.ForeignKey(
        "quotas.Plan", null=True, blank=True, on_delete=models.PROTECT, related_name="organizations"
    )
    requests_per_minute = _limit("requests per minute")
    requests_per_day = _limit("requests per day")
    tokens_per_minute = _limit("tokens per minute")
    documents_per_minute = _limit("documents per minute")
    documents_per_day = _limit("documents per day")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    DEVELOPER = "developer", "Developer"
    BILLING = "billing", "Billing"


class Membership(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.DEVELOPER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "organization"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"


class Scope(models.TextChoices):
    INFERENCE = "inference", "Inference"
    KNOWLEDGE = "knowledge", "Knowledge"
    ADMIN = "admin", "Admin"


class KeyKind(models.TextChoices):
    SECRET = "secret", "Secret (sk-aivax-…)"
    PUBLIC = "public", "Public (pk-aivax-…, for browsers)"


class ApiKey(TenantModel):
    """The secret itself is never stored: only a lookup prefix and an HMAC-SHA256 of the whole key.

    A public key (`pk-aivax-…`) is made to be embedded in a web page: inference only, on its listed gateways,
    from its allowed browser origins, with only `model`, `messages` and `stream` taken from the caller.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=8, choices=KeyKind.choices, default=KeyKind.SECRET)
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    scopes = ArrayField(models.CharField(max_length=16, choices=Scope.choices), default=list)
    # Empty means every gateway of the organization.
    allowed_gateway_ids = ArrayField(models.UUIDField(), default=list, blank=True)
    # Public keys only: exact browser origins ("https://app.example.com") allowed to call with the key.
    allowed_origins = ArrayField(models.CharField(max_length=200), default=list, blank=True)
    requests_per_minute = _limit("requests per minute")
    requests_per_day = _limit("requests per day")
    tokens_per_minute = _limit("tokens per minute")
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    monthly_budget = models.DecimalField(
        max_digits=20, decimal_places=10, null=True, blank=True,
        help_text="USD this key may spend per calendar month (UTC); empty: no cap",
    )  # fmt: skip
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())
