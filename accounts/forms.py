"""Console forms for accounts: sign in, sign up, organizations, members."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.http import HttpRequest

from accounts import throttle
from accounts.models import Role, User


class EmailAuthenticationForm(AuthenticationForm):
    """Users sign in with their email address, whatever their username (accounts made by `createsuperuser`,
    `seed_demo` or an older version have usernames that are not their email). Attempts are throttled per client
    IP and per account (accounts/throttle.py)."""

    username = forms.EmailField(
        label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )
    error_messages = {
        **AuthenticationForm.error_messages,
        "throttled": "Too many sign-in attempts. Try again in %(minutes)s minutes.",
    }
    throttled = False

    def clean(self) -> dict[str, Any]:
        email = (self.cleaned_data.get("username") or "").strip().lower()
        if email and not throttle.sign_in_allowed(self.request, email):
            self.throttled = True
            raise forms.ValidationError(
                self.error_messages["throttled"], code="throttled", params={"minutes": throttle.window_minutes()}
            )
        if email:
            # ModelBackend authenticates by username: hand it the username of the account with this email.
            user = User.objects.filter(email__iexact=email).only("username").first()
            self.cleaned_data["username"] = user.username if user is not None else email
        return super().clean()


class ResetForm(PasswordResetForm):
    """Django's reset form, but invited members who never set a password can ask for a link too."""

    def get_users(self, email: str) -> Any:
        return User.objects.filter(email__iexact=email.strip(), is_active=True)


class SignUpForm(forms.Form):
    email = forms.EmailField(label="Work email", widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    organization = forms.CharField(
        label="Organization name", max_length=120, help_text="Your team or company; you can invite others later."
    )
    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 8 characters, not entirely numeric and not a common password.",
    )
    password2 = forms.CharField(
        label="Confirm password", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def __init__(self, *args: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request = request
        self.throttled = False

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if not throttle.sign_up_allowed(self.request, email):
            self.throttled = True
            raise forms.ValidationError(f"Too many sign-ups. Try again in {throttle.window_minutes()} minutes.")
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this email already exists. Sign in instead.")
        return email

    def clean_organization(self) -> str:
        name = self.cleaned_data["organization"].strip()
        if not name:
            raise forms.ValidationError("Name your organization.")
        return name

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        password1, password2 = data.get("password1"), data.get("password2")
        if password1 and password2 and password1 != password2:
            self.add_error("password2", "The two passwords differ.")
        elif password1:
            try:
                password_validation.validate_password(password1, User(email=data.get("email") or ""))
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return data


class OrganizationForm(forms.Form):
    name = forms.CharField(label="Organization name", max_length=120)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Name your organization.")
        return name


def role_choices(*, can_grant_owner: bool) -> list[tuple[str, str]]:
    return [(r.value, r.label) for r in Role if can_grant_owner or r != Role.OWNER]


class InviteForm(forms.Form):
    email = forms.EmailField(label="Email address", widget=forms.EmailInput(attrs={"placeholder": "name@company.com"}))
    role = forms.ChoiceField(label="Role", initial=Role.DEVELOPER)

    def __init__(self, *args: Any, can_grant_owner: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = role_choices(can_grant_owner=can_grant_owner)

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()


class RoleForm(forms.Form):
    role = forms.ChoiceField(label="Role")

    def __init__(self, *args: Any, can_grant_owner: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = role_choices(can_grant_owner=can_grant_owner)
