from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from accounts import keys
from accounts.auth import aauthenticate_key
from accounts.models import ApiKey, Scope
from accounts.services import api_key_create, api_key_revoke, api_key_update
from aivax.errors import AuthenticationFailed, InvalidRequest, PermissionDenied

# Production authenticates keys only on the async path; these sync tests drive that path.
authenticate_key = async_to_sync(aauthenticate_key)


def test_key_is_shown_once_and_never_stored(api_key) -> None:
    stored = ApiKey.unscoped.get(pk=api_key.key.pk)
    assert api_key.raw.startswith("sk-aivax-")
    assert len(api_key.raw) >= len("sk-aivax-") + 12 + 43  # 32 random bytes, base64url
    assert api_key.raw not in {stored.digest, stored.prefix, stored.name}
    assert stored.digest == keys.key_digest(api_key.raw)
    assert stored.digest != keys.key_digest(api_key.raw + "x")
    assert api_key.raw.startswith("sk-aivax-" + stored.prefix)


def test_lookup_authenticates_and_reports_scopes(api_key, org) -> None:
    principal = authenticate_key(api_key.raw)
    assert principal.organization_id == org.pk
    assert principal.scopes == frozenset(Scope.values)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda k: k[:-1] + ("A" if k[-1] != "A" else "B"),  # right prefix, wrong secret
        lambda k: "sk-aivax-" + "z" * 12 + k[21:],  # unknown prefix
        lambda k: "not-a-key",
        lambda k: "",
    ],
)
def test_wrong_keys_get_the_same_401(api_key, mangle) -> None:
    with pytest.raises(AuthenticationFailed) as exc:
        authenticate_key(mangle(api_key.raw))
    assert exc.value.status == 401


def test_revocation_takes_effect_at_once_even_after_caching(api_key) -> None:
    authenticate_key(api_key.raw)  # now cached in Redis
    api_key_revoke(key=api_key.key)
    with pytest.raises(AuthenticationFailed):
        authenticate_key(api_key.raw)


def test_expired_key_is_rejected_like_an_unknown_one(api_key) -> None:
    authenticate_key(api_key.raw)
    api_key_update(key=api_key.key, expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(AuthenticationFailed) as exc:
        authenticate_key(api_key.raw)
    assert "Incorrect API key" in exc.value.message


def test_scope_check(org) -> None:
    created = api_key_create(organization=org, name="inference only", scopes=[Scope.INFERENCE])
    principal = authenticate_key(created.raw)
    principal.require_scope("inference")
    with pytest.raises(PermissionDenied) as exc:
        principal.require_scope("admin")
    assert exc.value.status == 403


def test_invalid_key_requests(org) -> None:
    with pytest.raises(InvalidRequest):
        api_key_create(organization=org, name="x", scopes=["root"])
    with pytest.raises(InvalidRequest):
        api_key_create(
            organization=org,
            name="x",
            scopes=[Scope.INFERENCE],
            expires_at=timezone.now() - timedelta(days=1),
        )


def test_last_used_is_recorded_without_a_write_per_request(api_key, django_assert_max_num_queries) -> None:
    authenticate_key(api_key.raw)
    assert ApiKey.unscoped.get(pk=api_key.key.pk).last_used_at is not None
    with django_assert_max_num_queries(0):
        for _ in range(5):
            authenticate_key(api_key.raw)
