"""The staff REST API: who may use it (owner, teammate, outsider, billing staff; token and session), its filters,
cursor pages, statements, audited credits and reversals, and its OpenAPI schema."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from billing import skus
from billing.models import EntryKind, LedgerEntry
from billing.pricing import UsageLine
from billing.selectors import account_get
from billing.services import credit_grant, settle

API = "/api/staff"
GATEWAY = uuid.uuid4()


def _bill(org, request_id: str, amount: str, *, sku: str = skus.CHAT_OUT, gateway=GATEWAY) -> None:
    price = Decimal(amount)
    settle(
        request_id=request_id,
        organization_id=org.pk,
        lines=[UsageLine(sku, 1, price, price, "Inference for AI model 'm'")],
        gateway_id=gateway,
        api_key_id=None,
        model="@openai/gpt-4o-mini",
        metadata={"customer": "c-42"},
    )


@pytest.fixture
def ledger(funded_org, outsider_org, billing_staff) -> None:
    _bill(funded_org, "req-a", "0.25")
    _bill(funded_org, "req-b", "0.5", sku=skus.CHAT_IN)
    _bill(funded_org, "req-c", "0.125", gateway=uuid.uuid4())
    credit_grant(organization=outsider_org, amount=Decimal("2"), reason="trial", staff_user=billing_staff)
    _bill(outsider_org, "req-z", "1")


def _as(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_login(user)
    return client


def _token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def _endpoints(org) -> list[str]:
    entry = LedgerEntry.objects.for_org(org).first()
    now = timezone.now()
    return [
        f"{API}/",
        f"{API}/organizations/",
        f"{API}/organizations/{org.slug}/",
        f"{API}/organizations/{org.slug}/statements/",
        f"{API}/organizations/{org.slug}/statements/{now.year}/{now.month}/",
        f"{API}/ledger/",
        f"{API}/requests/",
        f"{API}/requests/req-a/",
        f"{API}/schema/",
        f"{API}/ledger/{entry.pk}/reverse/",  # GET is not allowed even for staff, but must not leak first
    ]


@pytest.mark.django_db
def test_anonymous_is_asked_to_authenticate(ledger, org):
    for url in _endpoints(org):
        assert _as().get(url).status_code in (401, 403), url
        assert APIClient().get(url, HTTP_AUTHORIZATION="Token not-a-token").status_code == 401, url


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["owner", "teammate", "outsider"])
def test_tenants_never_see_it(ledger, org, persona, request):
    user = request.getfixturevalue(persona)
    for client in (_as(user), _token_client(user)):
        for url in _endpoints(org):
            assert client.get(url).status_code == 404, (persona, url)
        response = client.post(f"{API}/organizations/{org.slug}/credits/", {"amount": "5", "reason": "me"})
        assert response.status_code == 404
    assert account_get(organization_id=org.pk).balance == Decimal("10") - Decimal("0.875")


@pytest.mark.django_db
def test_billing_staff_by_session_and_by_token(ledger, org, billing_staff):
    for client in (_as(billing_staff), _token_client(billing_staff)):
        for url in _endpoints(org)[:-1]:
            assert client.get(url).status_code == 200, url
    browsable = _as(billing_staff).get(f"{API}/ledger/", HTTP_ACCEPT="text/html")
    assert browsable.status_code == 200 and b"Django REST framework" in browsable.content


@pytest.mark.django_db
def test_organizations_with_balances(ledger, org, outsider_org, billing_staff):
    rows = _token_client(billing_staff).get(f"{API}/organizations/").json()["results"]
    by_slug = {row["slug"]: row for row in rows}
    assert Decimal(by_slug[org.slug]["balance"]) == Decimal("9.125")
    assert Decimal(by_slug[outsider_org.slug]["balance"]) == Decimal("1")
    assert by_slug[org.slug]["balance"] == "9.1250000000"  # money is a decimal string, never a float


@pytest.mark.django_db
def test_ledger_filters(ledger, org, outsider_org, billing_staff):
    client = _token_client(billing_staff)

    def ids(**params) -> list[str]:
        response = client.get(f"{API}/ledger/", params)
        assert response.status_code == 200, response.content
        return sorted(row["request_id"] for row in response.json()["results"])

    assert ids(organization=org.slug) == sorted(["req-a", "req-b", "req-c", *_credit_ids(org)])
    assert ids(organization=org.slug, sku=skus.CHAT_IN) == ["req-b"]
    assert ids(gateway=str(GATEWAY)) == ["req-a", "req-b", "req-z"]
    assert ids(request_id="req-z") == ["req-z"]
    today = timezone.now().date()
    assert len(ids(start=str(today), end=str(today))) == 6
    assert ids(end=str(today - timedelta(days=1))) == []
    assert client.get(f"{API}/ledger/", {"organization": "nope"}).status_code == 400
    assert client.get(f"{API}/ledger/", {"gateway": "not-a-uuid"}).status_code == 400
    bad_range = client.get(f"{API}/ledger/", {"start": str(today), "end": str(today - timedelta(days=2))})
    assert bad_range.status_code == 400 and "start" in bad_range.json()


def _credit_ids(org) -> list[str]:
    return list(LedgerEntry.objects.for_org(org).filter(kind=EntryKind.CREDIT).values_list("request_id", flat=True))


@pytest.mark.django_db
def test_ledger_cursor_pages_cover_every_row_once(ledger, org, billing_staff):
    client = _token_client(billing_staff)
    expected = LedgerEntry.unscoped.count()
    seen: list[int] = []
    url: str | None = f"{API}/ledger/?page_size=2"
    while url:
        page = client.get(url).json()
        assert len(page["results"]) <= 2
        seen += [row["id"] for row in page["results"]]
        url = page["next"]
        if len(seen) == 2:  # a row written mid-read shifts no page (an offset would repeat a row)
            _bill(org, "req-late", "0.01")
    assert seen == sorted(seen, reverse=True)
    assert len(seen) == len(set(seen)) == expected


@pytest.mark.django_db
def test_billed_requests_and_drill_down(ledger, org, billing_staff):
    client = _token_client(billing_staff)
    rows = client.get(f"{API}/requests/", {"organization": org.slug}).json()["results"]
    assert {r["request_id"] for r in rows} == {"req-a", "req-b", "req-c"}
    detail = client.get(f"{API}/requests/req-a/").json()
    assert detail["metadata"] == {"customer": "c-42"} and len(detail["entries"]) == 1
    assert client.get(f"{API}/requests/no-such/").status_code == 404


@pytest.mark.django_db
def test_statement_reconciles(ledger, org, billing_staff):
    now = timezone.now()
    client = _token_client(billing_staff)
    months = client.get(f"{API}/organizations/{org.slug}/statements/").json()
    assert [(m["year"], m["month"]) for m in months] == [(now.year, now.month)]
    sheet = client.get(f"{API}/organizations/{org.slug}/statements/{now.year}/{now.month}/").json()
    assert Decimal(sheet["credits"]) == Decimal("10") and Decimal(sheet["charges"]) == Decimal("0.875")
    assert Decimal(sheet["closing_balance"]) == account_get(organization_id=org.pk).balance
    assert client.get(f"{API}/organizations/{org.slug}/statements/{now.year}/13/").status_code == 404


@pytest.mark.django_db
def test_credit_grant_is_audited_and_needs_a_reason(ledger, org, billing_staff):
    client = _token_client(billing_staff)
    url = f"{API}/organizations/{org.slug}/credits/"
    assert client.post(url, {"amount": "5"}, format="json").status_code == 400
    assert client.post(url, {"amount": "5", "reason": "   "}, format="json").status_code == 400
    assert client.post(url, {"amount": "-1", "reason": "oops"}, format="json").status_code == 400
    before = account_get(organization_id=org.pk).balance
    response = client.post(url, {"amount": "5.5", "reason": "goodwill after outage"}, format="json")
    assert response.status_code == 201, response.content
    entry = LedgerEntry.unscoped.get(pk=response.json()["id"])
    assert entry.created_by == billing_staff and entry.reason == "goodwill after outage"
    assert account_get(organization_id=org.pk).balance == before + Decimal("5.5")


@pytest.mark.django_db
def test_session_writes_need_csrf(ledger, org, billing_staff):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(billing_staff)
    url = f"{API}/organizations/{org.slug}/credits/"
    assert client.post(url, {"amount": "1", "reason": "x"}, format="json").status_code == 403


@pytest.mark.django_db
def test_reversal_once_with_a_reason(ledger, org, billing_staff):
    client = _token_client(billing_staff)
    charge = LedgerEntry.objects.for_org(org).get(request_id="req-a")
    url = f"{API}/ledger/{charge.pk}/reverse/"
    assert client.post(url, {}, format="json").status_code == 400
    response = client.post(url, {"reason": "customer complaint #12"}, format="json")
    assert response.status_code == 201
    assert response.json()["kind"] == EntryKind.REVERSAL and response.json()["reverses"] == charge.pk
    again = client.post(url, {"reason": "twice"}, format="json")
    assert again.status_code == 400
    assert (
        client.post(f"{API}/ledger/{response.json()['id']}/reverse/", {"reason": "x"}, format="json").status_code == 400
    )


@pytest.mark.django_db
def test_openapi_schema(billing_staff):
    import yaml

    response = _token_client(billing_staff).get(f"{API}/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["info"]["title"] == "aivax staff billing API"
    paths = set(schema["paths"])
    assert "/api/staff/ledger/" in paths and "/api/staff/organizations/{slug}/credits/" in paths
    assert not any(p.startswith("/api/v1/") for p in paths)


@pytest.mark.django_db(transaction=True)
def test_browser_session_through_the_asgi_app(live_asgi, billing_staff, org):
    """/api/staff/ takes the full middleware stack in aivax.asgi (sessions), unlike /api/v1/."""
    import httpx
    from django.test import Client

    browser = Client()
    browser.force_login(billing_staff)
    cookies = {"sessionid": browser.cookies["sessionid"].value}
    response = httpx.get(f"{live_asgi.url}{API}/organizations/", cookies=cookies, headers={"Accept": "text/html"})
    assert response.status_code == 200 and org.slug in response.text
    assert httpx.get(f"{live_asgi.url}{API}/organizations/").status_code in (401, 403)
