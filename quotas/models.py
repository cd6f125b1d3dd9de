"""Plans (tiers) that staff define in the admin and assign to organizations. An empty limit means unlimited."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


def _limit(verbose_name: str) -> models.PositiveIntegerField:
    return models.PositiveIntegerField(verbose_name, null=True, blank=True, help_text="Empty: unlimited.")


class Plan(models.Model):
    name = models.CharField(max_length=60, unique=True)
    is_default = models.BooleanField(
        default=False, help_text="Applies to every organization without a plan of its own (exactly one plan)."
    )
    requests_per_minute = _limit("requests per minute")
    requests_per_day = _limit("requests per day")
    tokens_per_minute = _limit("tokens per minute")
    documents_per_minute = _limit("documents per minute")
    documents_per_day = _limit("documents per day")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=Q(is_default=True),
                name="one_default_plan",
                violation_error_message="Only one plan can be the default: untick the current default first.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} (default)" if self.is_default else self.name
