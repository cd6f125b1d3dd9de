"""Writes for gateways, tenants' endpoints and the catalog. Validation lives here, shared by the API and console."""

from __future__ import annotations

import secrets
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from accounts.models import Organization
from aivax import outbound
from aivax.errors import InvalidRequest
from gateways import cache as gateway_cache
from gateways.models import ByoEndpoint, CatalogModel, Gateway, OverflowAction, Overridable, QueryStrategy

GATEWAY_FIELDS = {
    "name",
    "catalog_model",
    "byo_endpoint",
    "fallback_model_ids",
    "system_instruction",
    "user_prompt_template",
    "assistant_prefill",
    "include_prefill_in_message",
    "temperature",
    "top_p",
    "max_completion_tokens",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "overridable",
    "context_max_tokens",
    "context_overflow",
    "knowledge_collection",
    "knowledge_max_results",
    "knowledge_min_score",
    "knowledge_use_references",
    "query_strategy",
    "query_context_size",
    "max_tool_rounds",
    "is_active",
}


def _check_range(fields: dict[str, Any], name: str, low: float, high: float) -> None:
    value = fields.get(name)
    if value is not None and not (low <= float(value) <= high):
        raise InvalidRequest(f"'{name}' must be between {low} and {high}.", param=name)


def _validate(organization: Organization, fields: dict[str, Any]) -> None:
    unknown = set(fields) - GATEWAY_FIELDS
    if unknown:
        raise InvalidRequest(f"Unknown gateway field(s): {', '.join(sorted(unknown))}.", param=sorted(unknown)[0])
    if "name" in fields and not str(fields["name"] or "").strip():
        raise InvalidRequest("A gateway needs a name.", param="name")
    _check_range(fields, "temperature", 0, 2)
    _check_range(fields, "top_p", 0, 1)
    _check_range(fields, "presence_penalty", -2, 2)
    _check_range(fields, "frequency_penalty", -2, 2)
    _check_range(fields, "knowledge_min_score", 0, 1)
    _check_range(fields, "max_tool_rounds", 1, 10)
    max_tokens = fields.get("max_completion_tokens")
    if max_tokens is not None and int(max_tokens) < 1:
        raise InvalidRequest("'max_completion_tokens' must be at least 1.", param="max_completion_tokens")
    stop = fields.get("stop")
    if stop is not None and (len(stop) > 4 or any(not isinstance(s, str) or not s for s in stop)):
        raise InvalidRequest("'stop' takes up to 4 non-empty strings.", param="stop")
    template = fields.get("user_prompt_template")
    if template and "{prompt}" not in template:
        raise InvalidRequest("'user_prompt_template' must contain {prompt}.", param="user_prompt_template")
    bad = [o for o in fields.get("overridable") or [] if o not in Overridable.values]
    if bad:
        raise InvalidRequest(f"Unknown overridable parameter(s): {', '.join(bad)}.", param="overridable")
    if "context_overflow" in fields and fields["context_overflow"] not in OverflowAction.values:
        raise InvalidRequest("'context_overflow' must be 'truncate' or 'throw'.", param="context_overflow")
    if "query_strategy" in fields and fields["query_strategy"] not in QueryStrategy.values:
        raise InvalidRequest(
            f"'query_strategy' must be one of {', '.join(QueryStrategy.values)}.", param="query_strategy"
        )
    byo = fields.get("byo_endpoint")
    if byo is not None and byo.organization_id != organization.pk:
        raise InvalidRequest("Unknown endpoint.", param="byo_endpoint")
    collection = fields.get("knowledge_collection")
    if collection is not None and collection.organization_id != organization.pk:
        raise InvalidRequest("Unknown knowledge collection.", param="knowledge_collection")
    catalog = fields.get("catalog_model")
    if catalog is not None and not catalog.is_active:
        raise InvalidRequest(f"Model '{catalog.name}' is not available.", param="model")
    fallbacks = fields.get("fallback_model_ids") or []
    if fallbacks and CatalogModel.objects.filter(pk__in=fallbacks, is_active=True).count() != len(set(fallbacks)):
        raise InvalidRequest("Unknown fallback model.", param="fallback_model_ids")


def _new_slug(name: str) -> str:
    return f"{slugify(name)[:60] or 'gateway'}:{secrets.token_hex(2)}"


def gateway_create(*, organization: Organization, name: str, **fields: Any) -> Gateway:
    fields["name"] = name
    _validate(organization, fields)
    if (fields.get("catalog_model") is None) == (fields.get("byo_endpoint") is None):
        raise InvalidRequest("Choose exactly one model: a catalog model or your own endpoint.", param="model")
    for _ in range(5):  # the 4-hex suffix may collide within an organization; try another
        try:
            with transaction.atomic():
                gateway = Gateway.unscoped.create(organization=organization, slug=_new_slug(name), **fields)
            # Clears a cached "no such model" for this organization.
            transaction.on_commit(lambda created=gateway: gateway_cache.forget(created))
            return gateway
        except IntegrityError as exc:
            if "gateway_slug_unique_per_org" not in str(exc):
                raise
    raise InvalidRequest("Could not allocate a gateway name; try another name.", param="name")


def gateway_update(*, gateway: Gateway, **fields: Any) -> Gateway:
    _validate(gateway.organization, fields)
    for key, value in fields.items():
        setattr(gateway, key, value)
    if (gateway.catalog_model_id is None) == (gateway.byo_endpoint_id is None):
        raise InvalidRequest("Choose exactly one model: a catalog model or your own endpoint.", param="model")
    gateway.save()
    transaction.on_commit(lambda: gateway_cache.forget(gateway))
    return gateway


def gateway_delete(*, gateway: Gateway) -> None:
    gateway.delete()
    transaction.on_commit(lambda: gateway_cache.forget(gateway))


def byo_endpoint_create(
    *,
    organization: Organization,
    name: str,
    base_url: str,
    model_name: str,
    api_key: str = "",
    context_window: int = 8192,
    wire_api: str = "chat_completions",
) -> ByoEndpoint:
    outbound.validate_url(base_url)
    if not model_name.strip():
        raise InvalidRequest("Name the upstream model.", param="model_name")
    return ByoEndpoint.unscoped.create(
        organization=organization,
        name=name,
        base_url=base_url.rstrip("/"),
        model_name=model_name.strip(),
        api_key=api_key,
        context_window=context_window,
        wire_api=wire_api,
    )


def byo_endpoint_update(*, endpoint: ByoEndpoint, **fields: Any) -> ByoEndpoint:
    if "base_url" in fields:
        outbound.validate_url(fields["base_url"])
        fields["base_url"] = fields["base_url"].rstrip("/")
    for key, value in fields.items():
        setattr(endpoint, key, value)
    endpoint.save()
    transaction.on_commit(lambda: gateway_cache.forget_organization(endpoint.organization_id))
    return endpoint


def byo_endpoint_delete(*, endpoint: ByoEndpoint) -> None:
    """Delete a tenant's endpoint that no gateway uses (as its model)."""
    users = list(Gateway.unscoped.filter(byo_endpoint=endpoint).values_list("name", flat=True))
    if users:
        raise InvalidRequest(
            f"{endpoint.name} is the model of {', '.join(sorted(users))}; choose another model there first.",
            param="endpoint",
        )
    organization_id = endpoint.organization_id
    endpoint.delete()
    transaction.on_commit(lambda: gateway_cache.forget_organization(organization_id))


def catalog_model_upsert(
    *,
    name: str,
    base_url: str,
    upstream_model: str,
    api_key: str = "",
    context_window: int = 8192,
    capabilities: list[str] | None = None,
    description: str = "",
    wire_api: str = "chat_completions",
) -> CatalogModel:
    outbound.validate_url(base_url, policy=outbound.Policy.PLATFORM)
    model, _ = CatalogModel.objects.update_or_create(
        name=name,
        defaults={
            "base_url": base_url.rstrip("/"),
            "upstream_model": upstream_model,
            "api_key": api_key,
            "context_window": context_window,
            "wire_api": wire_api,
            "capabilities": capabilities or ["chat"],
            "description": description,
            "is_active": True,
        },
    )
    transaction.on_commit(gateway_cache.forget_all)
    return model


def _catalog_by_name_or_id(ref: str, param: str) -> CatalogModel:
    model = CatalogModel.objects.filter(name=ref, is_active=True).first()
    if model is None:
        try:
            model = CatalogModel.objects.filter(pk=ref, is_active=True).first()
        except (ValueError, DjangoValidationError):
            model = None
    if model is None:
        raise InvalidRequest(f"Unknown model '{ref}'. See the model catalog for the names.", param=param)
    return model


def _fields_from_parameters(
    organization: Organization, parameters: dict[str, Any], gateway: Gateway | None = None
) -> dict[str, Any]:
    """AIVAX's camelCase `parameters` -> Gateway fields (validated later by gateway_create/update)."""
    from gateways.schemas import SIMPLE_FIELDS

    fields = {SIMPLE_FIELDS[k]: v for k, v in parameters.items() if k in SIMPLE_FIELDS}
    if parameters.get("model"):
        fields["catalog_model"] = _catalog_by_name_or_id(parameters["model"], "parameters.model")
        fields["byo_endpoint"] = None
    elif parameters.get("baseAddress") or parameters.get("modelName"):
        existing = gateway.byo_endpoint if gateway is not None and gateway.byo_endpoint_id else None
        if existing is not None:
            update = {
                "base_url": parameters.get("baseAddress"),
                "model_name": parameters.get("modelName"),
                "api_key": parameters.get("apiKey"),
            }
            fields["byo_endpoint"] = byo_endpoint_update(
                endpoint=existing, **{k: v for k, v in update.items() if v is not None}
            )
        else:
            if not parameters.get("baseAddress") or not parameters.get("modelName"):
                raise InvalidRequest("Give both baseAddress and modelName for your own endpoint.", param="baseAddress")
            fields["byo_endpoint"] = byo_endpoint_create(
                organization=organization,
                name=parameters["modelName"],
                base_url=parameters["baseAddress"],
                model_name=parameters["modelName"],
                api_key=parameters.get("apiKey") or "",
            )
        fields["catalog_model"] = None
    if parameters.get("fallbackModels") is not None:
        fields["fallback_model_ids"] = [
            _catalog_by_name_or_id(ref, "parameters.fallbackModels").pk for ref in parameters["fallbackModels"]
        ]
    action = parameters.get("contextOverflowAction")
    if action is not None:
        if action.lower() not in OverflowAction.values:
            raise InvalidRequest("contextOverflowAction must be 'Truncate' or 'Throw'.", param="contextOverflowAction")
        fields["context_overflow"] = action.lower()
    strategy_params = parameters.get("queryStrategyParameters") or {}
    size = strategy_params.get("rewriteContextSize") or strategy_params.get("concatenateContextSize")
    if size is not None:
        if not 1 <= int(size) <= 50:
            raise InvalidRequest("Context sizes must be between 1 and 50.", param="queryStrategyParameters")
        fields["query_context_size"] = int(size)
    if "knowledgeCollectionId" in parameters:
        fields["knowledge_collection"] = _collection_for(organization, parameters["knowledgeCollectionId"])
    if fields.get("stop") is None and "stop" in fields:
        fields["stop"] = []
    if fields.get("overridable") is None and "overridable" in fields:
        fields.pop("overridable")
    return fields


def _collection_for(organization: Organization, collection_id: str | None) -> Any:
    if not collection_id:
        return None
    from knowledge.models import Collection

    try:
        return Collection.objects.for_org(organization).get(pk=collection_id)
    except (Collection.DoesNotExist, ValueError, DjangoValidationError) as exc:
        raise InvalidRequest("Unknown knowledge collection.", param="knowledgeCollectionId") from exc


@transaction.atomic
def gateway_create_from_parameters(*, organization: Organization, name: str, parameters: dict[str, Any]) -> Gateway:
    from gateways.tools import parameters as tool_parameters

    gateway = gateway_create(organization=organization, name=name, **_fields_from_parameters(organization, parameters))
    tool_parameters.apply(gateway, parameters)
    return gateway


@transaction.atomic
def gateway_update_from_parameters(*, gateway: Gateway, name: str | None, parameters: dict[str, Any]) -> Gateway:
    fields = _fields_from_parameters(gateway.organization, parameters, gateway)
    if name is not None:
        fields["name"] = name
    from gateways.tools import parameters as tool_parameters

    gateway = gateway_update(gateway=gateway, **fields)
    tool_parameters.apply(gateway, parameters)
    return gateway
