"""Writes for accounts: users, organizations, memberships and API keys."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts import keys
from accounts.auth import forget_cached_key
from accounts.models import ApiKey, Membership, Organization, Role, Scope, User
from aivax.errors import InvalidRequest


def user_create(*, email: str, password: str | None, username: str | None = None, **extra: object) -> User:
    user = User(email=email.lower(), username=username or email.lower(), **extra)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    return user


def _unique_org_slug(name: str) -> str:
    base = slugify(name)[:50] or "org"
    slug, n = base, 1
    while Organization.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def organization_create(*, name: str, owner: User, slug: str | None = None) -> Organization:
    org = Organization.objects.create(name=name, slug=slug or _unique_org_slug(name))
    Membership.objects.create(user=owner, organization=org, role=Role.OWNER)
    from aivax.signals import organization_created

    organization_created.send(sender=Organization, organization=org)
    return org


def membership_set(*, organization: Organization, user: User, role: str) -> Membership:
    if role not in Role.values:
        raise InvalidRequest(f"Unknown role '{role}'.", param="role")
    membership, _ = Membership.objects.update_or_create(organization=organization, user=user, defaults={"role": role})
    return membership


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    raw: str  # shown once, never stored


def api_key_create(
    *,
    organization: Organization,
    name: str,
    scopes: Iterable[str] = (Scope.INFERENCE,),
    expires_at: datetime | None = None,
    allowed_gateway_ids: Iterable[uuid.UUID] = (),
    created_by: User | None = None,
) -> CreatedKey:
    scopes = sorted(set(scopes))
    unknown = [s for s in scopes if s not in Scope.values]
    if unknown:
        raise InvalidRequest(f"Unknown scope(s): {', '.join(unknown)}.", param="scopes")
    if not scopes:
        raise InvalidRequest("A key needs at least one scope.", param="scopes")
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidRequest("expires_at must be in the future.", param="expires_at")
    new = keys.generate_key()
    key = ApiKey.unscoped.create(
        organization=organization,
        name=name,
        prefix=new.prefix,
        digest=new.digest,
        scopes=scopes,
        expires_at=expires_at,
        allowed_gateway_ids=list(allowed_gateway_ids),
        created_by=created_by,
    )
    # A negative lookup for this prefix may be cached; clear it.
    transaction.on_commit(lambda: forget_cached_key(new.prefix))
    return CreatedKey(key=key, raw=new.raw)


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    if key.revoked_at is None:
        ApiKey.unscoped.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        key.refresh_from_db(fields=["revoked_at"])
    forget_cached_key(key.prefix)
    transaction.on_commit(lambda: forget_cached_key(key.prefix))
    return key


def api_key_update(*, key: ApiKey, **fields: object) -> ApiKey:
    for name, value in fields.items():
        setattr(key, name, value)
    key.save(update_fields=list(fields))
    forget_cached_key(key.prefix)
    transaction.on_commit(lambda: forget_cached_key(key.prefix))
    return key
