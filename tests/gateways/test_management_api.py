"""The AIVAX-shaped gateway management API: /api/v1/ai-gateways with an admin-scoped key."""

from __future__ import annotations

import httpx
import pytest

from accounts.models import Scope
from accounts.services import api_key_create
from gateways.models import ByoEndpoint, Gateway

pytestmark = pytest.mark.django_db(transaction=True)


class Admin:
    def __init__(self, base: str, key: str) -> None:
        self.client = httpx.Client(base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=20)

    def __getattr__(self, method: str):
        return getattr(self.client, method)


@pytest.fixture
def admin(live_asgi, api_key) -> Admin:
    return Admin(live_asgi.url, api_key.raw)


def test_create_list_get_patch_delete(admin, funded, catalog_model, stub, upstream_model, client) -> None:
    created = admin.post(
        "/ai-gateways",
        json={
            "name": "Helpdesk",
            "parameters": {
                "model": catalog_model.name,
                "systemInstruction": "Be kind.",
                "temperature": 0.3,
                "stop": ["###"],
                "contextOverflowAction": "Throw",
                "contextMaximumSize": 2000,
                "overridable": ["temperature"],
            },
        },
    )
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    assert created.json()["message"] == "Gateway created."
    assert data["slug"].startswith("helpdesk:") and len(data["slug"]) == len("helpdesk:") + 4
    params = data["parameters"]
    assert (params["model"], params["systemInstruction"], params["temperature"]) == (
        catalog_model.name,
        "Be kind.",
        0.3,
    )
    assert params["contextOverflowAction"] == "Throw" and params["stop"] == ["###"]

    listed = admin.get("/ai-gateways").json()["data"]
    assert [g["id"] for g in listed] == [data["id"]]
    assert admin.get(f"/ai-gateways/{data['slug']}").json()["data"]["id"] == data["id"]

    patched = admin.patch(f"/ai-gateways/{data['id']}", json={"parameters": {"systemInstruction": "Be brief."}})
    assert patched.status_code == 200
    assert patched.json()["data"]["parameters"]["systemInstruction"] == "Be brief."
    assert patched.json()["data"]["parameters"]["temperature"] == 0.3  # partial: the rest is unchanged
    # The edit applies at once to inference (the gateway cache is cleared on every edit).
    client.chat.completions.create(model=data["slug"], messages=[{"role": "user", "content": "hi"}])
    assert stub.app.requests_for(upstream_model)[-1]["messages"][0] == {"role": "system", "content": "Be brief."}

    assert admin.delete(f"/ai-gateways/{data['id']}").status_code == 200
    assert admin.get(f"/ai-gateways/{data['id']}").status_code == 404
    gone = client.with_options(max_retries=0).chat.completions.with_raw_response
    with pytest.raises(Exception) as exc:
        gone.create(model=data["slug"], messages=[{"role": "user", "content": "hi"}])
    assert getattr(exc.value, "status_code", None) == 404


def test_bring_your_own_endpoint_key_is_never_returned(admin, org, stub) -> None:
    created = admin.post(
        "/ai-gateways",
        json={
            "name": "Mine",
            "parameters": {"baseAddress": stub.base_url, "modelName": "my-model", "apiKey": "sk-tenant-secret"},
        },
    )
    assert created.status_code == 201, created.text
    assert "sk-tenant-secret" not in created.text
    assert created.json()["data"]["parameters"]["apiKey"] == "(set)"
    endpoint = ByoEndpoint.objects.for_org(org).get()
    assert endpoint.api_key == "sk-tenant-secret"
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key FROM gateways_byoendpoint WHERE id = %s", [endpoint.pk])
        stored = cursor.fetchone()[0]
    assert stored and "sk-tenant-secret" not in stored  # encrypted at rest


@pytest.mark.parametrize(
    ("parameters", "param"),
    [
        ({"model": "@nope/none"}, "parameters.model"),
        ({}, "model"),
        ({"model": "MODEL", "temperature": 5}, "parameters.temperature"),  # checked by the schema, as sent
        ({"model": "MODEL", "userPromptTemplate": "no placeholder"}, "user_prompt_template"),
        ({"model": "MODEL", "contextOverflowAction": "Explode"}, "contextOverflowAction"),
        ({"baseAddress": "ftp://example.com", "modelName": "m"}, "parameters.baseAddress"),
        ({"baseAddress": "http://169.254.169.254/latest", "modelName": "m"}, "base_url"),
        ({"baseAddress": "http://[::ffff:169.254.169.254]/v1", "modelName": "m"}, "base_url"),
        ({"baseAddress": "http://0xA9FEA9FE/v1", "modelName": "m"}, "base_url"),
        ({"baseAddress": "http://metadata.google.internal/v1", "modelName": "m"}, "base_url"),
    ],
)
def test_invalid_parameters_name_the_field(admin, catalog_model, parameters, param) -> None:
    parameters = {k: (catalog_model.name if v == "MODEL" else v) for k, v in parameters.items()}
    response = admin.post("/ai-gateways", json={"name": "Bad", "parameters": parameters})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_unknown_parameter_is_rejected(admin, catalog_model) -> None:
    response = admin.post(
        "/ai-gateways", json={"name": "X", "parameters": {"model": catalog_model.name, "tempreature": 1}}
    )
    assert response.status_code == 400
    assert "tempreature" in response.json()["error"]["param"]


def test_admin_scope_required_and_other_orgs_are_404(live_asgi, org, gateway, outsider_key) -> None:
    inference_only = api_key_create(organization=org, name="i", scopes=[Scope.INFERENCE])
    response = httpx.get(
        f"{live_asgi.url}/api/v1/ai-gateways", headers={"Authorization": f"Bearer {inference_only.raw}"}
    )
    assert response.status_code == 403
    outsider = Admin(live_asgi.url, outsider_key.raw)
    assert outsider.get(f"/ai-gateways/{gateway.pk}").status_code == 404
    assert outsider.patch(f"/ai-gateways/{gateway.pk}", json={"name": "pwned"}).status_code == 404
    assert outsider.delete(f"/ai-gateways/{gateway.pk}").status_code == 404
    assert outsider.get("/ai-gateways").json()["data"] == []
    assert Gateway.objects.for_org(org).get().name == "Support Bot"
