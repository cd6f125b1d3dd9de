"""Plans in the Django admin, and changes to plans and organizations reaching every process at once."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.services import user_create
from quotas import policy
from quotas.models import Plan

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def staff_client(db: None) -> Client:
    staff = user_create(email="ops@aivax.test", password="pw-ops-123!", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff)
    return client


def _plan_form(name: str, **values: object) -> dict[str, object]:
    fields = ["requests_per_minute", "requests_per_day", "tokens_per_minute", "documents_per_minute"]
    return {"name": name, **{f: "" for f in [*fields, "documents_per_day"]}, **values}


def test_staff_define_plans_and_only_one_is_the_default(staff_client: Client, default_plan) -> None:
    response = staff_client.post("/admin/quotas/plan/add/", _plan_form("Pro", requests_per_minute="5"))
    assert response.status_code == 302
    assert Plan.objects.get(name="Pro").requests_per_minute == 5
    response = staff_client.post("/admin/quotas/plan/add/", _plan_form("Other", is_default="on"))
    assert response.status_code == 200 and "Only one plan can be the default" in response.content.decode()


def test_plan_and_organization_changes_apply_at_once(org, default_plan) -> None:
    assert policy.organization_limits(org.pk).plan.requests_per_minute == 600  # now cached in Redis
    default_plan.requests_per_minute = 100
    default_plan.save()
    assert policy.organization_limits(org.pk).plan.requests_per_minute == 100
    org.plan = Plan.objects.create(name="Tiny", requests_per_minute=2)
    org.requests_per_day = 50
    org.save()
    limits = policy.organization_limits(org.pk)
    assert limits.plan.requests_per_minute == 2 and limits.organization.requests_per_day == 50
