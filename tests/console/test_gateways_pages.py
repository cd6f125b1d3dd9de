"""Gateway pages: every parameter through the form, service validation shown next to the field, snippets."""

from __future__ import annotations

from html import unescape

import pytest
from django.test import Client

from gateways.models import ByoEndpoint, Gateway
from gateways.services import byo_endpoint_create

FULL = {
    "name": "Docs helper",
    "system_instruction": "Answer from the docs.",
    "user_prompt_template": "Question: {prompt}",
    "assistant_prefill": "Sure:",
    "include_prefill_in_message": "",
    "temperature": "0.7",
    "top_p": "0.9",
    "max_completion_tokens": "300",
    "stop": "END\n###",
    "presence_penalty": "0.5",
    "frequency_penalty": "-0.5",
    "seed": "42",
    "overridable": ["temperature", "max_tokens"],
    "context_max_tokens": "2000",
    "context_overflow": "throw",
    "query_strategy": "Concatenate",
    "knowledge_max_results": "5",
    "knowledge_min_score": "0.3",
    "knowledge_use_references": "on",
    "query_context_size": "4",
    "is_active": "on",
}


def test_create_with_every_parameter(as_dev: Client, org, catalog_model) -> None:
    fallback = catalog_model.__class__.objects.create(
        name="@local/backup", base_url="http://127.0.0.1:9/v1", upstream_model="b"
    )
    data = {**FULL, "model": f"catalog:{catalog_model.pk}", "fallback_models": [str(fallback.pk)]}
    response = as_dev.post("/console/gateways/new", data)
    assert response.status_code == 302
    gateway = Gateway.objects.for_org(org).get()
    assert response["Location"] == f"/console/gateways/{gateway.pk}/"
    assert gateway.catalog_model == catalog_model and gateway.byo_endpoint is None
    assert gateway.fallback_model_ids == [fallback.pk]
    assert (gateway.system_instruction, gateway.user_prompt_template, gateway.assistant_prefill) == (
        "Answer from the docs.",
        "Question: {prompt}",
        "Sure:",
    )
    assert gateway.include_prefill_in_message is False
    assert (gateway.temperature, gateway.top_p, gateway.max_completion_tokens) == (0.7, 0.9, 300)
    assert gateway.stop == ["END", "###"]
    assert (gateway.presence_penalty, gateway.frequency_penalty, gateway.seed) == (0.5, -0.5, 42)
    assert gateway.overridable == ["temperature", "max_tokens"]
    assert (gateway.context_max_tokens, gateway.context_overflow) == (2000, "throw")
    assert (gateway.query_strategy, gateway.knowledge_max_results, gateway.knowledge_min_score) == (
        "Concatenate",
        5,
        0.3,
    )
    assert gateway.knowledge_use_references and gateway.query_context_size == 4 and gateway.is_active


def test_stop_on_one_line_is_comma_separated(as_owner: Client, org, catalog_model) -> None:
    as_owner.post("/console/gateways/new", {**FULL, "model": f"catalog:{catalog_model.pk}", "stop": "a, b ,c"})
    assert Gateway.objects.for_org(org).get().stop == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"temperature": "2.5"}, "temperature", "between 0 and 2"),
        ({"top_p": "1.5"}, "top_p", "between 0 and 1"),
        ({"presence_penalty": "-3"}, "presence_penalty", "between -2 and 2"),
        ({"user_prompt_template": "no placeholder"}, "user_prompt_template", "{prompt}"),
        ({"stop": "a\nb\nc\nd\ne"}, "stop", "up to 4"),
        ({"max_completion_tokens": "0"}, "max_completion_tokens", "at least 1"),
        ({"knowledge_min_score": "2"}, "knowledge_min_score", "between 0 and 1"),
        ({"temperature": "hot"}, "temperature", "Enter a number"),
        ({"name": ""}, "name", "required"),
        ({"model": ""}, "model", "required"),
    ],
)
def test_validation_message_next_to_the_field(as_owner: Client, org, catalog_model, change, field, message) -> None:
    response = as_owner.post("/console/gateways/new", {**FULL, "model": f"catalog:{catalog_model.pk}", **change})
    assert response.status_code == 400
    html = response.content.decode()
    assert f'id="id_{field}_error"' in html
    assert message in " ".join(response.context["form"].errors[field])
    assert not Gateway.objects.for_org(org).exists()


def test_inactive_catalog_model_is_not_offered(as_owner: Client, catalog_model) -> None:
    catalog_model.is_active = False
    catalog_model.save()
    response = as_owner.post("/console/gateways/new", {**FULL, "model": f"catalog:{catalog_model.pk}"})
    assert response.status_code == 400 and "model" in response.context["form"].errors


def test_byo_endpoint_of_another_organization_is_not_offered(as_owner: Client, org, outsider_org) -> None:
    theirs = byo_endpoint_create(
        organization=outsider_org, name="theirs", base_url="http://127.0.0.1:9/v1", model_name="m"
    )
    response = as_owner.post("/console/gateways/new", {**FULL, "model": f"byo:{theirs.pk}"})
    assert response.status_code == 400 and "model" in response.context["form"].errors
    assert "theirs" not in as_owner.get("/console/gateways/new").content.decode()


def test_add_endpoint_from_the_form_with_htmx(as_owner: Client, org) -> None:
    data = {
        "byo-name": "My vLLM",
        "byo-base_url": "http://127.0.0.1:8001/v1/",
        "byo-model_name": "qwen",
        "byo-api_key": "sk-secret-upstream",
        "byo-context_window": "32768",
    }
    response = as_owner.post("/console/endpoints/new", data, headers={"HX-Request": "true"})
    assert response.status_code == 200
    endpoint = ByoEndpoint.objects.for_org(org).get()
    assert endpoint.base_url == "http://127.0.0.1:8001/v1" and endpoint.api_key == "sk-secret-upstream"
    html = response.content.decode()
    assert 'hx-swap-oob="true"' in html and f'value="byo:{endpoint.pk}" selected' in html
    assert "sk-secret-upstream" not in html
    # And a gateway on it.
    created = as_owner.post("/console/gateways/new", {**FULL, "model": f"byo:{endpoint.pk}"})
    assert created.status_code == 302
    assert Gateway.objects.for_org(org).get().byo_endpoint == endpoint
    assert "sk-secret-upstream" not in as_owner.get("/console/gateways/").content.decode()


def test_add_endpoint_errors(as_owner: Client, org) -> None:
    bad = {"byo-name": "x", "byo-base_url": "ftp://host/v1", "byo-model_name": "m", "byo-context_window": "8192"}
    response = as_owner.post("/console/endpoints/new", bad, headers={"HX-Request": "true"})
    assert 'id="id_byo-base_url_error"' in response.content.decode()
    assert not ByoEndpoint.objects.for_org(org).exists()


def test_edit_keeps_and_changes_fields(as_owner: Client, gateway) -> None:
    page = as_owner.get(f"/console/gateways/{gateway.pk}/edit").content.decode()
    assert 'value="Support bot"' in page and 'value="0.3"' in page
    data = {**FULL, "name": "Support bot v2", "model": f"catalog:{gateway.catalog_model_id}", "temperature": ""}
    response = as_owner.post(f"/console/gateways/{gateway.pk}/edit", data)
    assert response.status_code == 302
    gateway.refresh_from_db()
    assert gateway.name == "Support bot v2" and gateway.temperature is None and gateway.seed == 42


def test_edit_error_leaves_the_gateway_alone(as_owner: Client, gateway) -> None:
    data = {**FULL, "model": f"catalog:{gateway.catalog_model_id}", "temperature": "9"}
    response = as_owner.post(f"/console/gateways/{gateway.pk}/edit", data)
    assert response.status_code == 400 and 'id="id_temperature_error"' in response.content.decode()
    gateway.refresh_from_db()
    assert gateway.temperature == 0.3 and gateway.name == "Support bot"


def test_delete(as_dev: Client, org, gateway) -> None:
    confirm = as_dev.get(f"/console/gateways/{gateway.pk}/delete")
    assert confirm.status_code == 200 and gateway.slug in confirm.content.decode()
    assert as_dev.post(f"/console/gateways/{gateway.pk}/delete").status_code == 302
    assert not Gateway.objects.for_org(org).exists()


def test_detail_has_snippets_with_a_placeholder_key(as_owner: Client, gateway, api_key) -> None:
    html = unescape(as_owner.get(f"/console/gateways/{gateway.pk}/").content.decode())
    assert "curl http://testserver/api/v1/chat/completions" in html
    assert 'base_url="http://testserver/api/v1"' in html
    assert f'model="{gateway.slug}"' in html and f'"model": "{gateway.slug}"' in html
    assert 'api_key="<your API key>"' in html and "Bearer <your API key>" in html
    assert api_key.raw not in html


def test_list_shows_gateways(as_dev: Client, gateway) -> None:
    html = as_dev.get("/console/gateways/").content.decode()
    assert gateway.name in html and gateway.slug in html and "@local/stub" in html


def test_own_endpoint_delete_refused_while_used_then_done(as_owner, org, outsider_org) -> None:
    from gateways.models import ByoEndpoint
    from gateways.services import byo_endpoint_create, gateway_create, gateway_delete

    endpoint = byo_endpoint_create(organization=org, name="mine", base_url="http://127.0.0.1:9/v1", model_name="m")
    used_by = gateway_create(organization=org, name="Uses it", byo_endpoint=endpoint)
    page = as_owner.get("/console/gateways/")
    assert f"/console/endpoints/{endpoint.pk}/delete".encode() in page.content
    refused = as_owner.post(f"/console/endpoints/{endpoint.pk}/delete", follow=True)
    assert b"choose another model there first" in refused.content
    assert ByoEndpoint.objects.for_org(org).filter(pk=endpoint.pk).exists()
    gateway_delete(gateway=used_by)
    as_owner.post(f"/console/endpoints/{endpoint.pk}/delete")
    assert not ByoEndpoint.objects.for_org(org).filter(pk=endpoint.pk).exists()

    foreign = byo_endpoint_create(
        organization=outsider_org, name="theirs", base_url="http://127.0.0.1:9/v1", model_name="m"
    )
    assert as_owner.post(f"/console/endpoints/{foreign.pk}/delete").status_code == 404
    assert ByoEndpoint.objects.for_org(outsider_org).filter(pk=foreign.pk).exists()
