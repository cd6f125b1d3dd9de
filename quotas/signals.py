"""Cached organization/plan limits are dropped on commit whenever an organization or a plan changes (admin,
shell, services alike), so no process keeps applying old numbers."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from accounts.models import Organization
from quotas.models import Plan
from quotas.policy import forget_organizations


@receiver([post_save, post_delete], sender=Organization)
def _organization_changed(sender: type, instance: Organization, **kwargs: Any) -> None:
    organization_id = instance.pk
    transaction.on_commit(lambda: forget_organizations([organization_id]))


@receiver([post_save, post_delete], sender=Plan)
def _plan_changed(sender: type, instance: Plan, **kwargs: Any) -> None:
    transaction.on_commit(forget_organizations)
