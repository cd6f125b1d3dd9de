"""Sign up, sign in and out, password reset, organization switcher, members and invitations."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from accounts.models import Membership, Organization, Role, User
from accounts.services import membership_set, organization_create, user_create


def test_sign_up_creates_user_organization_and_owner(db: None) -> None:
    client = Client()
    response = client.post(
        "/accounts/signup/",
        {
            "email": "Ada@Example.test",
            "organization": "Analytical",
            "password1": "engine-Diff-42",
            "password2": "engine-Diff-42",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/console/"
    user = User.objects.get(email="ada@example.test")
    membership = Membership.objects.get(user=user)
    assert membership.role == Role.OWNER and membership.organization.name == "Analytical"
    assert "Analytical" in client.get("/console/").content.decode()


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"email": "owner@acme.test"}, "email", "already exists"),
        ({"password1": "abc", "password2": "abc"}, "password1", "too short"),
        ({"password2": "something-else-9"}, "password2", "differ"),
        ({"organization": "  "}, "organization", "required"),
    ],
)
def test_sign_up_shows_field_errors(owner: User, data: dict, field: str, message: str) -> None:
    form = {"email": "new@x.test", "organization": "X", "password1": "engine-Diff-42", "password2": "engine-Diff-42"}
    response = Client().post("/accounts/signup/", {**form, **data})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors and message in " ".join(errors[field])
    assert f'id="id_{field}_error"' in response.content.decode()


def test_sign_in_by_email_any_case_and_sign_out(owner: User, org: Organization) -> None:
    client = Client()
    page = client.get("/accounts/login/").content.decode()
    assert '<label for="id_username">Email</label>' in page
    response = client.post("/accounts/login/", {"username": "OWNER@acme.test", "password": "pw-owner-123!"})
    assert response.status_code == 302 and response["Location"] == "/console/"
    bad = client.post("/accounts/logout/")
    assert bad.status_code == 302
    assert client.get("/console/").status_code == 302
    wrong = Client().post("/accounts/login/", {"username": "owner@acme.test", "password": "nope"})
    assert wrong.status_code == 200 and "correct" in wrong.content.decode()


def _link(body: str) -> str:
    found = re.search(r"https?://[^/\s]+(/accounts/reset/\S+/)", body)
    assert found, body
    return found.group(1)


def test_password_reset_by_email(owner: User) -> None:
    client = Client()
    response = client.post("/accounts/password-reset/", {"email": "owner@acme.test"})
    assert response.status_code == 302 and response["Location"] == "/accounts/password-reset/sent/"
    assert len(mail.outbox) == 1
    link = _link(mail.outbox[0].body)
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200 and form_page.context["validlink"]
    done = client.post(
        form_page.redirect_chain[-1][0], {"new_password1": "brand-New-pass-7", "new_password2": "brand-New-pass-7"}
    )
    assert done.status_code == 302
    assert Client().login(username="owner@acme.test", password="brand-New-pass-7")


def test_password_reset_for_unknown_email_says_nothing(db: None) -> None:
    response = Client().post("/accounts/password-reset/", {"email": "nobody@x.test"})
    assert response.status_code == 302 and not mail.outbox


def test_organization_switcher(owner: User, org: Organization, outsider_org: Organization) -> None:
    second = organization_create(name="Zeta Labs", owner=owner)
    client = Client()
    client.force_login(owner)
    page = client.get("/console/").content.decode()
    assert 'id="org-switch"' in page and "Zeta Labs" in page
    assert "<h1>Acme</h1>" in page  # the first by name
    client.post("/console/organizations/switch", {"organization": second.pk})
    assert "<h1>Zeta Labs</h1>" in client.get("/console/").content.decode()
    # Not a member: refused, stays where it was.
    response = client.post("/console/organizations/switch", {"organization": outsider_org.pk}, follow=True)
    assert "not a member" in response.content.decode()
    assert "<h1>Zeta Labs</h1>" in client.get("/console/").content.decode()


def test_single_organization_has_no_switcher(as_owner: Client) -> None:
    assert 'id="org-switch"' not in as_owner.get("/console/").content.decode()


def test_owner_invites_a_new_person_who_sets_a_password(
    as_owner: Client, org: Organization, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = as_owner.post("/console/members/invite", {"email": "New.Hire@Acme.test", "role": "developer"})
    assert response.status_code == 302
    user = User.objects.get(email="new.hire@acme.test")
    assert not user.has_usable_password()
    assert Membership.objects.get(user=user, organization=org).role == Role.DEVELOPER
    assert len(mail.outbox) == 1 and "Acme" in mail.outbox[0].subject
    link = _link(mail.outbox[0].body)
    invited = Client()
    form_page = invited.get(link, follow=True)
    assert form_page.context["validlink"]
    invited.post(
        form_page.redirect_chain[-1][0], {"new_password1": "hired-Today-99", "new_password2": "hired-Today-99"}
    )
    assert invited.get("/console/gateways/").status_code == 200  # signed in after setting the password
    members = as_owner.get("/console/members/").content.decode()
    assert "new.hire@acme.test" in members


def test_invite_existing_user_adds_them(
    as_owner: Client, org: Organization, outsider: User, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        as_owner.post("/console/members/invite", {"email": "eve@globex.test", "role": "billing"})
    assert Membership.objects.get(user=outsider, organization=org).role == Role.BILLING
    assert outsider.has_usable_password()
    assert len(mail.outbox) == 1 and "/accounts/reset/" not in mail.outbox[0].body
    again = as_owner.post("/console/members/invite", {"email": "eve@globex.test", "role": "developer"})
    assert again.status_code == 400 and "already a member" in again.content.decode()


def test_invite_shows_field_errors(as_owner: Client) -> None:
    response = as_owner.post("/console/members/invite", {"email": "not-an-email", "role": "developer"})
    assert response.status_code == 400
    assert 'id="id_email_error"' in response.content.decode()


def test_developer_cannot_invite_or_change_roles(as_dev: Client, org: Organization, owner: User) -> None:
    assert as_dev.post("/console/members/invite", {"email": "x@x.test", "role": "developer"}).status_code == 403
    owner_membership = Membership.objects.get(user=owner, organization=org)
    assert (
        as_dev.post(
            f"/console/members/{owner_membership.pk}/role", {f"m{owner_membership.pk}-role": "billing"}
        ).status_code
        == 403
    )
    page = as_dev.get("/console/members/").content.decode()
    assert "Invite someone" not in page


def test_admin_cannot_make_owners_or_touch_them(
    as_admin: Client, org: Organization, owner: User, teammate: User
) -> None:
    response = as_admin.post("/console/members/invite", {"email": "boss@acme.test", "role": "owner"})
    assert response.status_code == 400 and not User.objects.filter(email="boss@acme.test").exists()
    owner_m = Membership.objects.get(user=owner, organization=org)
    as_admin.post(f"/console/members/{owner_m.pk}/role", {f"m{owner_m.pk}-role": "developer"})
    owner_m.refresh_from_db()
    assert owner_m.role == Role.OWNER
    as_admin.post(f"/console/members/{owner_m.pk}/remove")
    assert Membership.objects.filter(pk=owner_m.pk).exists()
    dev_m = Membership.objects.get(user=teammate, organization=org)
    as_admin.post(f"/console/members/{dev_m.pk}/role", {f"m{dev_m.pk}-role": "billing"})
    dev_m.refresh_from_db()
    assert dev_m.role == Role.BILLING


def test_last_owner_stays(as_owner: Client, org: Organization, owner: User, teammate: User) -> None:
    owner_m = Membership.objects.get(user=owner, organization=org)
    response = as_owner.post(f"/console/members/{owner_m.pk}/role", {f"m{owner_m.pk}-role": "developer"}, follow=True)
    assert "at least one owner" in response.content.decode()
    dev_m = Membership.objects.get(user=teammate, organization=org)
    as_owner.post(f"/console/members/{dev_m.pk}/role", {f"m{dev_m.pk}-role": "owner"})
    as_owner.post(f"/console/members/{owner_m.pk}/role", {f"m{owner_m.pk}-role": "admin"})
    owner_m.refresh_from_db()
    assert owner_m.role == Role.ADMIN  # another owner exists now


def test_remove_member_and_other_organizations_member_is_404(
    as_owner: Client, org: Organization, teammate: User, outsider_org: Organization, outsider: User
) -> None:
    dev_m = Membership.objects.get(user=teammate, organization=org)
    as_owner.post(f"/console/members/{dev_m.pk}/remove")
    assert not Membership.objects.filter(pk=dev_m.pk).exists()
    foreign = Membership.objects.get(user=outsider, organization=outsider_org)
    assert as_owner.post(f"/console/members/{foreign.pk}/remove").status_code == 404
    assert as_owner.post(f"/console/members/{foreign.pk}/role", {f"m{foreign.pk}-role": "billing"}).status_code == 404


def test_members_of_several_organizations_switch_roles_with_them(owner: User, org: Organization) -> None:
    other_owner = user_create(email="zed@zeta.test", password="pw-zed-123!")
    zeta = organization_create(name="Zeta", owner=other_owner)
    membership_set(organization=zeta, user=owner, role=Role.BILLING)
    client = Client()
    client.force_login(owner)
    assert client.get("/console/gateways/").status_code == 200
    client.post("/console/organizations/switch", {"organization": zeta.pk})
    assert client.get("/console/gateways/").status_code == 403
