"""Tenant scoping has one home: this module.

Tenant-owned models inherit `TenantModel`. Their `objects` manager refuses to build a query that does not name
the organization: `Model.objects.for_org(org)` is the only way in, and `Model.objects.filter(...)` raises
`TenantScopeError`. `Model.unscoped` is the explicit, greppable escape hatch (admin, staff reports, workers that
already hold an id they were given by scoped code). Another organization's object is a 404, never a 403.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

from django.db import models
from django.http import Http404

if TYPE_CHECKING:
    from accounts.models import Organization

M = TypeVar("M", bound="TenantModel")


class TenantScopeError(RuntimeError):
    """A query on tenant-owned data that did not say which organization it is for."""


class TenantManager(models.Manager["M"], Generic[M]):
    def get_queryset(self) -> models.QuerySet[M]:
        raise TenantScopeError(
            f"{self.model.__name__}.objects needs an organization: use "
            f"{self.model.__name__}.objects.for_org(org), or {self.model.__name__}.unscoped deliberately."
        )

    def for_org(self, organization: Organization | int) -> models.QuerySet[M]:
        org_id = organization if isinstance(organization, int) else organization.pk
        if org_id is None:
            raise TenantScopeError("for_org() was given an organization without a primary key")
        return super().get_queryset().filter(organization_id=org_id)


class TenantModel(models.Model):
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")

    # `unscoped` comes first so that Django's own machinery (admin, cascades, related lookups) uses it.
    unscoped = models.Manager()
    objects: TenantManager[Any] = TenantManager()

    class Meta:
        abstract = True
        default_manager_name = "unscoped"


def get_for_org_or_404(model: type[M], organization: Organization | int, **lookup: Any) -> M:
    """The one way to fetch a single tenant object by id: not found and not yours look the same."""
    from django.core.exceptions import ValidationError

    try:
        return model.objects.for_org(organization).get(**lookup)
    except (model.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        # A malformed id (not a UUID, say) is also just "not found".
        raise Http404(f"{model._meta.verbose_name} not found") from exc


async def aget_for_org_or_404(model: type[M], organization: Organization | int, **lookup: Any) -> M:
    from django.core.exceptions import ValidationError

    try:
        return await model.objects.for_org(organization).aget(**lookup)
    except (model.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise Http404(f"{model._meta.verbose_name} not found") from exc
