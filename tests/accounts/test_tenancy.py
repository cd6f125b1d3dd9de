from __future__ import annotations

import pytest
from django.db import connection
from django.http import Http404

from accounts.models import ApiKey
from accounts.selectors import api_key_get, api_key_list, user_organizations
from aivax.tenancy import TenantScopeError, get_for_org_or_404


def test_query_without_organization_fails_loudly(api_key) -> None:
    with pytest.raises(TenantScopeError):
        ApiKey.objects.all()
    with pytest.raises(TenantScopeError):
        ApiKey.objects.filter(name="all scopes")
    with pytest.raises(TenantScopeError):
        ApiKey.objects.get(pk=api_key.key.pk)


def test_scoped_queries_see_only_their_organization(api_key, outsider_key, org, outsider_org) -> None:
    assert list(api_key_list(organization=org)) == [api_key.key]
    assert list(api_key_list(organization=outsider_org)) == [outsider_key.key]


def test_another_organizations_object_is_a_404(api_key, outsider_org) -> None:
    with pytest.raises(Http404):
        api_key_get(organization=outsider_org, key_id=api_key.key.pk)
    with pytest.raises(Http404):
        get_for_org_or_404(ApiKey, outsider_org, pk="not-a-uuid")


def test_users_see_their_organizations(owner, teammate, outsider, org, outsider_org) -> None:
    assert list(user_organizations(user=owner)) == [org]
    assert list(user_organizations(user=teammate)) == [org]
    assert list(user_organizations(user=outsider)) == [outsider_org]


def test_embedded_database_has_pgvector(db) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    assert row is not None and tuple(int(p) for p in row[0].split(".")[:2]) >= (0, 8)
