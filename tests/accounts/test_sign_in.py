"""Console sign-in by email (whatever the username), with what `seed_demo` prints, and throttled sign-in and
sign-up attempts."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.test import Client, override_settings

from accounts.models import User
from accounts.services import user_create


@pytest.fixture(autouse=True)
def _own_throttle_counters(settings) -> None:
    # Each test counts attempts under its own prefix: counters from other tests (same client IP) do not leak in.
    import uuid

    settings.CACHE_KEY_PREFIX = f"{settings.CACHE_KEY_PREFIX}-{uuid.uuid4().hex[:8]}"


def test_sign_in_with_exactly_what_seed_demo_prints(db: None) -> None:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    found = re.search(r"console login : (\S+) / (\S+)", out.getvalue())
    assert found, out.getvalue()
    email, password = found.groups()
    assert User.objects.get(email=email).username != email  # the case that was refused
    response = Client().post("/accounts/login/", {"username": email, "password": password})
    assert response.status_code == 302 and response["Location"] == "/console/"


def test_sign_in_by_email_when_the_username_is_something_else(db: None) -> None:
    user_create(email="ops@acme.test", password="pw-ops-123!", username="ops-admin")
    response = Client().post("/accounts/login/", {"username": "Ops@Acme.test", "password": "pw-ops-123!"})
    assert response.status_code == 302
    wrong = Client().post("/accounts/login/", {"username": "ops@acme.test", "password": "nope"})
    assert wrong.status_code == 200 and "correct" in wrong.content.decode()


@override_settings(SIGNIN_ATTEMPTS_PER_ACCOUNT=3, SIGNIN_ATTEMPTS_PER_IP=100)
def test_sign_in_attempts_are_throttled_per_account(db: None) -> None:
    user_create(email="victim@acme.test", password="pw-victim-123!")
    for _ in range(3):
        response = Client().post("/accounts/login/", {"username": "victim@acme.test", "password": "guess"})
        assert response.status_code == 200
    refused = Client().post("/accounts/login/", {"username": "victim@acme.test", "password": "pw-victim-123!"})
    assert refused.status_code == 429 and "Too many sign-in attempts" in refused.content.decode()
    # Another account from the same address is not locked out by it.
    user_create(email="other@acme.test", password="pw-other-123!")
    assert (
        Client().post("/accounts/login/", {"username": "other@acme.test", "password": "pw-other-123!"}).status_code
        == 302
    )


@override_settings(SIGNIN_ATTEMPTS_PER_IP=2, SIGNIN_ATTEMPTS_PER_ACCOUNT=100)
def test_sign_in_attempts_are_throttled_per_ip(db: None) -> None:
    for i in range(2):
        Client().post("/accounts/login/", {"username": f"u{i}@acme.test", "password": "guess"})
    refused = Client().post("/accounts/login/", {"username": "u9@acme.test", "password": "guess"})
    assert refused.status_code == 429
    elsewhere = Client(REMOTE_ADDR="192.0.2.7").post("/accounts/login/", {"username": "u9@acme.test", "password": "x"})
    assert elsewhere.status_code == 200


@override_settings(SIGNUPS_PER_IP=2)
def test_sign_ups_are_throttled_per_ip(db: None) -> None:
    form = {"organization": "X", "password1": "engine-Diff-42", "password2": "engine-Diff-42"}
    for i in range(2):
        response = Client().post("/accounts/signup/", {**form, "email": f"new{i}@x.test"})
        assert response.status_code == 302
    refused = Client().post("/accounts/signup/", {**form, "email": "new9@x.test"})
    assert refused.status_code == 429 and "Too many sign-ups" in refused.content.decode()
    assert not User.objects.filter(email="new9@x.test").exists()
