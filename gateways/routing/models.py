"""Candidate models of a routing gateway."""

from __future__ import annotations

import uuid

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from aivax.tenancy import TenantModel

BAND = [MinValueValidator(1), MaxValueValidator(10)]


class RouteCandidate(TenantModel):
    """A model a routing gateway may pick: the first candidate (by position) whose band holds the rating wins."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    gateway = models.ForeignKey("gateways.Gateway", on_delete=models.CASCADE, related_name="route_candidates")
    position = models.PositiveSmallIntegerField(default=0)
    catalog_model = models.ForeignKey(
        "gateways.CatalogModel", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    byo_endpoint = models.ForeignKey(
        "gateways.ByoEndpoint", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    min_complexity = models.PositiveSmallIntegerField(default=1, validators=BAND)
    max_complexity = models.PositiveSmallIntegerField(default=10, validators=BAND)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(catalog_model__isnull=False, byo_endpoint__isnull=True)
                    | models.Q(catalog_model__isnull=True, byo_endpoint__isnull=False)
                ),
                name="route_candidate_exactly_one_model",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    min_complexity__gte=1, max_complexity__lte=10, min_complexity__lte=models.F("max_complexity")
                ),
                name="route_candidate_band",
            ),
        ]

    def __str__(self) -> str:
        model = self.catalog_model if self.catalog_model_id else self.byo_endpoint
        return f"{model} [{self.min_complexity}-{self.max_complexity}]"
