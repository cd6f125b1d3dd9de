"""Stored responses: what `previous_response_id` continues, and what GET /responses/{id} returns."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from aivax.tenancy import TenantModel


class StoredResponse(TenantModel):
    """A Response object as it was returned, and the whole conversation that led to it (earlier turns included,
    so continuing never walks a chain and deleting an earlier response breaks nothing later)."""

    id = models.CharField(primary_key=True, max_length=64, help_text="resp_<hex>, as returned to the caller")
    body = models.JSONField(help_text="The Response object, generation_context included")
    input_items = models.JSONField(default=list, help_text="Responses input items, earlier turns first")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "stored response"

    def __str__(self) -> str:
        return self.id
