from __future__ import annotations

import httpx
import pytest


@pytest.mark.django_db(transaction=True)
def test_health_and_readiness(live_asgi) -> None:
    assert httpx.get(f"{live_asgi.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{live_asgi.url}/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}


@pytest.mark.django_db(transaction=True)
def test_bearer_auth_over_http(live_asgi, api_key, outsider_key) -> None:
    me = httpx.get(f"{live_asgi.url}/api/v1/me", headers={"Authorization": f"Bearer {api_key.raw}"})
    assert me.status_code == 200, me.text
    assert me.json()["organization_id"] == api_key.key.organization_id

    for headers in ({}, {"Authorization": "Bearer sk-aivax-nope"}, {"Authorization": f"Basic {api_key.raw}"}):
        denied = httpx.get(f"{live_asgi.url}/api/v1/me", headers=headers)
        assert denied.status_code == 401
        error = denied.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert api_key.raw not in denied.text


@pytest.mark.django_db(transaction=True)
def test_me_accepts_a_key_of_any_single_scope(live_asgi, org) -> None:
    from accounts.models import Scope
    from accounts.services import api_key_create

    for scope in Scope.values:
        key = api_key_create(organization=org, name=scope, scopes=[scope])
        me = httpx.get(f"{live_asgi.url}/api/v1/me", headers={"Authorization": f"Bearer {key.raw}"})
        assert me.status_code == 200, (scope, me.text)
        assert me.json()["scopes"] == [scope]
