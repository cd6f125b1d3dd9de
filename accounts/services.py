"""Writes for accounts: users, organizations, memberships and API keys, and the membership rules (only an owner
makes or unmakes owners; an organization keeps at least one owner) that every page applies the same way."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from urllib.parse import urlsplit

from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.text import slugify

from accounts import keys
from accounts.auth import Principal, forget_cached_key
from accounts.models import ApiKey, KeyKind, Membership, Organization, Role, Scope, User
from aivax.errors import InvalidRequest, PermissionDenied
from quotas.policy import Limits


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


def normalize_origin(origin: str) -> str:
    """`https://App.example.com/` -> `https://app.example.com`: what browsers send in the Origin header."""
    parsed = urlsplit(origin.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.path not in ("", "/"):
        raise InvalidRequest(
            f"'{origin}' is not a browser origin (scheme://host[:port], e.g. https://app.example.com).",
            param="allowed_origins",
        )
    if parsed.query or parsed.fragment or parsed.username or parsed.password:
        raise InvalidRequest(f"'{origin}' is not a browser origin.", param="allowed_origins")
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.hostname.lower()}{port}"


def _validated_key_fields(
    *,
    kind: str,
    scopes: Iterable[str],
    expires_at: datetime | None,
    allowed_gateway_ids: Iterable[uuid.UUID],
    allowed_origins: Iterable[str],
    limits: Limits | None,
) -> dict[str, object]:
    if kind not in KeyKind.values:
        raise InvalidRequest(f"Unknown key type '{kind}'.", param="type")
    scopes = sorted(set(scopes))
    unknown = [s for s in scopes if s not in Scope.values]
    if unknown:
        raise InvalidRequest(f"Unknown scope(s): {', '.join(unknown)}.", param="scopes")
    if not scopes:
        raise InvalidRequest("A key needs at least one scope.", param="scopes")
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidRequest("expires_at must be in the future.", param="expires_at")
    gateway_ids = sorted({uuid.UUID(str(g)) for g in allowed_gateway_ids}, key=str)
    origins = sorted({normalize_origin(o) for o in allowed_origins})
    if kind == KeyKind.PUBLIC:
        if scopes != [Scope.INFERENCE]:
            raise InvalidRequest("A public key has the inference scope only.", param="scopes")
        if not gateway_ids:
            raise InvalidRequest("A public key must list the gateways it may call.", param="allowed_gateway_ids")
        if not origins:
            raise InvalidRequest(
                "A public key must list the browser origins it may be used from.", param="allowed_origins"
            )
    elif origins:
        raise InvalidRequest("Only public keys have allowed origins.", param="allowed_origins")
    for name, value in (limits or Limits()).to_dict().items():
        if value is not None and value < 1:
            raise InvalidRequest(f"{name} must be at least 1 (leave it out for no limit).", param=name)
    limits = limits or Limits()
    return {
        "scopes": scopes,
        "expires_at": expires_at,
        "allowed_gateway_ids": gateway_ids,
        "allowed_origins": origins,
        "requests_per_minute": limits.requests_per_minute,
        "requests_per_day": limits.requests_per_day,
        "tokens_per_minute": limits.tokens_per_minute,
    }


def _check_gateways(organization: Organization, gateway_ids: list[uuid.UUID]) -> None:
    from gateways.models import Gateway

    found = set(Gateway.objects.for_org(organization).filter(pk__in=gateway_ids).values_list("pk", flat=True))
    missing = [str(g) for g in gateway_ids if g not in found]
    if missing:
        raise InvalidRequest(f"Unknown gateway(s): {', '.join(missing)}.", param="allowed_gateway_ids")


def api_key_create(
    *,
    organization: Organization,
    name: str,
    scopes: Iterable[str] = (Scope.INFERENCE,),
    expires_at: datetime | None = None,
    allowed_gateway_ids: Iterable[uuid.UUID] = (),
    created_by: User | None = None,
    kind: str = KeyKind.SECRET,
    allowed_origins: Iterable[str] = (),
    limits: Limits | None = None,
    granted_by: Principal | None = None,
) -> CreatedKey:
    """A new key; `granted_by` is the API key creating it, which the new key may not exceed."""
    values = _validated_key_fields(
        kind=kind,
        scopes=scopes,
        expires_at=expires_at,
        allowed_gateway_ids=allowed_gateway_ids,
        allowed_origins=allowed_origins,
        limits=limits,
    )
    if granted_by is not None:
        _grants_within(granted_by, values)
    if values["allowed_gateway_ids"]:
        _check_gateways(organization, values["allowed_gateway_ids"])  # type: ignore[arg-type]
    new = keys.generate_key(public=kind == KeyKind.PUBLIC)
    key = ApiKey.unscoped.create(
        organization=organization,
        name=name,
        kind=kind,
        prefix=new.prefix,
        digest=new.digest,
        created_by=created_by,
        **values,
    )
    # A negative lookup for this prefix may be cached; clear it.
    transaction.on_commit(lambda: forget_cached_key(new.prefix, changed=False))
    return CreatedKey(key=key, raw=new.raw)


def key_grants_within(
    creator: Principal,
    *,
    scopes: Iterable[str],
    allowed_gateway_ids: Iterable[uuid.UUID],
    limits: Limits,
    expires_at: datetime | None,
) -> None:
    """A key never grants more than the key that creates or edits it: scopes, gateways, limits and expiry."""
    extra_scopes = sorted(set(scopes) - set(creator.scopes))
    if extra_scopes:
        raise PermissionDenied(
            f"This key cannot grant scopes it does not have: {', '.join(extra_scopes)}.", code="exceeds_creator"
        )
    if creator.allowed_gateway_ids:
        gateway_ids = {uuid.UUID(str(g)) for g in allowed_gateway_ids}
        if not gateway_ids or not gateway_ids <= creator.allowed_gateway_ids:
            raise PermissionDenied(
                "This key may only grant gateways it may use itself (list them in gatewayIds).",
                code="exceeds_creator",
            )
    wider = limits.within(creator.rate_limits or Limits())
    if wider:
        raise PermissionDenied(
            f"This key cannot grant higher limits than its own: {', '.join(wider)}.", code="exceeds_creator"
        )
    if creator.expires_at is not None and (expires_at is None or expires_at > creator.expires_at):
        raise PermissionDenied(
            "This key expires; a key it creates must expire no later (set expiresAt).", code="exceeds_creator"
        )


def _grants_within(principal: Principal, values: dict[str, object]) -> None:
    key_grants_within(
        principal,
        scopes=values["scopes"],  # type: ignore[arg-type]
        allowed_gateway_ids=values["allowed_gateway_ids"],  # type: ignore[arg-type]
        limits=Limits.of(values),
        expires_at=values["expires_at"],  # type: ignore[arg-type]
    )


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


def api_key_edit(
    *,
    key: ApiKey,
    name: str | None = None,
    scopes: Iterable[str] | None = None,
    expires_at: datetime | object | None = ...,
    allowed_gateway_ids: Iterable[uuid.UUID] | None = None,
    allowed_origins: Iterable[str] | None = None,
    limits: Limits | None = None,
    edited_by: Principal | None = None,
) -> ApiKey:
    """Change some of a key's settings (None / ... leaves a field as it is), validated like a new key; the key
    as it will be may not exceed `edited_by`, the API key making the change."""
    current_limits = Limits.of(key)
    values = _validated_key_fields(
        kind=key.kind,
        scopes=key.scopes if scopes is None else scopes,
        expires_at=key.expires_at if expires_at is ... else expires_at,  # type: ignore[arg-type]
        allowed_gateway_ids=key.allowed_gateway_ids if allowed_gateway_ids is None else allowed_gateway_ids,
        allowed_origins=key.allowed_origins if allowed_origins is None else allowed_origins,
        limits=current_limits if limits is None else limits,
    )
    if edited_by is not None:
        _grants_within(edited_by, values)
    if allowed_gateway_ids is not None and values["allowed_gateway_ids"]:
        _check_gateways(key.organization, values["allowed_gateway_ids"])  # type: ignore[arg-type]
    if expires_at is ... and key.expires_at is not None and key.expires_at <= timezone.now():
        values["expires_at"] = key.expires_at  # an expired key stays expired; only a new date revives it
    if name is not None:
        if not name.strip():
            raise InvalidRequest("name must not be empty.", param="name")
        values["name"] = name.strip()
    return api_key_update(key=key, **values)


def api_key_budget_within(*, budget: Decimal | None, granted_by: Principal | None) -> Decimal | None:
    """The monthly budget a key may get from `granted_by` (the API key creating or editing it): never more than
    the granting key's own budget, and a granting key with a budget cannot hand out an unlimited key (left out,
    the new key inherits the granter's budget)."""
    if granted_by is None or granted_by.key_id is None:
        return budget
    own = ApiKey.unscoped.filter(pk=granted_by.key_id).values_list("monthly_budget", flat=True).first()
    if own is None:
        return budget
    if budget is None:
        return own
    if budget > own:
        raise PermissionDenied(
            f"This key cannot grant a monthly budget above its own ({own:f} USD).", code="exceeds_creator"
        )
    return budget


def api_key_set_budget(*, key: ApiKey, budget: Decimal | None) -> ApiKey:
    """Set (or clear with None) a key's monthly USD budget; enforced inside every hold (billing.services)."""
    if budget is not None and budget < 0:
        raise InvalidRequest("monthlyBudget must not be negative.", param="monthlyBudget")
    return api_key_update(key=key, monthly_budget=budget)


@dataclass(frozen=True)
class Invitation:
    membership: Membership
    new_user: bool


def set_password_url(*, user: User, base_url: str) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return base_url.rstrip("/") + reverse("password_reset_confirm", kwargs={"uidb64": uid, "token": token})


def _check_grant(*, actor_role: str, role: str) -> None:
    if role == Role.OWNER and actor_role != Role.OWNER:
        raise InvalidRequest("Only an owner can make someone an owner.", param="role")


@transaction.atomic
def member_invite(
    *, organization: Organization, email: str, role: str, invited_by: User, actor_role: str, base_url: str
) -> Invitation:
    """Add a member by email. A new address gets an account with no password and an email to set one."""
    _check_grant(actor_role=actor_role, role=role)
    email = email.strip().lower()
    user = User.objects.filter(email__iexact=email).first()
    new_user = user is None
    if user is None:
        user = user_create(email=email, password=None)
    elif Membership.objects.filter(user=user, organization=organization).exists():
        raise InvalidRequest(f"{email} is already a member of {organization.name}.", param="email")
    membership = membership_set(organization=organization, user=user, role=role)
    context = {
        "organization": organization,
        "invited_by": invited_by,
        "new_user": new_user,
        "role": Role(role).label,
        "url": set_password_url(user=user, base_url=base_url) if new_user else base_url.rstrip("/") + "/console/",
    }
    subject = f"You have been invited to {organization.name} on aivax"
    body = render_to_string("accounts/email/invitation.txt", context)
    transaction.on_commit(lambda: send_mail(subject, body, None, [user.email]))
    return Invitation(membership=membership, new_user=new_user)


def _owners(organization: Organization) -> int:
    return Membership.objects.filter(organization=organization, role=Role.OWNER).count()


@transaction.atomic
def member_change_role(*, membership: Membership, role: str, actor_role: str) -> Membership:
    _check_grant(actor_role=actor_role, role=role)
    locked = Membership.objects.select_for_update().get(pk=membership.pk)
    if locked.role == Role.OWNER and role != Role.OWNER:
        if actor_role != Role.OWNER:
            raise InvalidRequest("Only an owner can change an owner's role.", param="role")
        if _owners(locked.organization) <= 1:
            raise InvalidRequest("An organization needs at least one owner.", param="role")
    return membership_set(organization=locked.organization, user=locked.user, role=role)


@transaction.atomic
def member_remove(*, membership: Membership, actor_role: str) -> None:
    locked = Membership.objects.select_for_update().get(pk=membership.pk)
    if locked.role == Role.OWNER:
        if actor_role != Role.OWNER:
            raise InvalidRequest("Only an owner can remove an owner.", param="role")
        if _owners(locked.organization) <= 1:
            raise InvalidRequest("An organization needs at least one owner.", param="role")
    locked.delete()


@transaction.atomic
def signup(*, email: str, password: str, organization_name: str) -> tuple[User, Organization]:
    user = user_create(email=email, password=password)
    return user, organization_create(name=organization_name, owner=user)
