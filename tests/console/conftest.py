"""Console fixtures: besides the owner, teammate (developer) and outsider of tests/conftest.py, a billing-role
member, an admin, a catalog model, and a gateway in each organization."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Organization, Role, User
from accounts.services import membership_set, user_create
from gateways.models import CatalogModel, Gateway
from gateways.services import catalog_model_upsert, gateway_create
from tests.console.stack import live_gateway, stub, upstream_model  # noqa: F401  (fixtures)


@pytest.fixture
def billing_member(org: Organization) -> User:
    user = user_create(email="ledger@acme.test", password="pw-billing-123!")
    membership_set(organization=org, user=user, role=Role.BILLING)
    return user


@pytest.fixture
def admin_member(org: Organization) -> User:
    user = user_create(email="admin@acme.test", password="pw-admin-123!")
    membership_set(organization=org, user=user, role=Role.ADMIN)
    return user


@pytest.fixture
def catalog_model(db: None) -> CatalogModel:
    return catalog_model_upsert(
        name="@local/stub", base_url="http://127.0.0.1:9/v1", upstream_model="stub", context_window=4096
    )


@pytest.fixture
def gateway(org: Organization, catalog_model: CatalogModel) -> Gateway:
    return gateway_create(organization=org, name="Support bot", catalog_model=catalog_model, temperature=0.3)


@pytest.fixture
def outsider_gateway(outsider_org: Organization, catalog_model: CatalogModel) -> Gateway:
    return gateway_create(organization=outsider_org, name="Globex bot", catalog_model=catalog_model)


def client_for(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def as_owner(owner: User, org: Organization) -> Client:
    return client_for(owner)


@pytest.fixture
def as_dev(teammate: User) -> Client:
    return client_for(teammate)


@pytest.fixture
def as_billing(billing_member: User) -> Client:
    return client_for(billing_member)


@pytest.fixture
def as_admin(admin_member: User) -> Client:
    return client_for(admin_member)


@pytest.fixture
def as_outsider(outsider: User) -> Client:
    return client_for(outsider)


@pytest.fixture
def csrf_client(owner: User, org: Organization) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    return client
