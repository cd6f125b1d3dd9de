"""Turn `model` (a gateway UUID or `name:xxxx` slug) into an immutable GatewayConfig, with a Redis cache in front
of the database that every edit clears (gateways.cache). Upstream keys stay encrypted inside the cache.
While Redis is down every lookup reads the database (the cache helpers turn an outage into a miss)."""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from aivax import crypto
from aivax.db import run_db
from aivax.errors import NotFound
from aivax.redis_client import acache_get, acache_set
from gateways.cache import entry_key
from gateways.models import ByoEndpoint, CatalogModel, Gateway
from gateways.upstream import Upstream

CACHE_TTL_SECONDS = 300


@dataclass(frozen=True)
class UpstreamRef:
    base_url: str
    model: str
    api_key_cipher: str
    display_name: str
    tenant_owned: bool
    catalog_model_id: str | None
    context_window: int
    wire_api: str = "chat_completions"
    output_limit_param: str = "max_completion_tokens"

    def upstream(self) -> Upstream:
        return Upstream(
            base_url=self.base_url,
            model=self.model,
            api_key=_decrypt(self.api_key_cipher) if self.api_key_cipher else "",
            display_name=self.display_name,
            tenant_owned=self.tenant_owned,
            catalog_model_id=uuid.UUID(self.catalog_model_id) if self.catalog_model_id else None,
            context_window=self.context_window,
            wire_api=self.wire_api,
            output_limit_param=self.output_limit_param,
        )


@dataclass(frozen=True)
class GatewayConfig:
    id: str
    organization_id: int
    slug: str
    name: str
    is_active: bool
    upstreams: list[UpstreamRef]
    system_instruction: str = ""
    user_prompt_template: str = ""
    assistant_prefill: str = ""
    include_prefill_in_message: bool = True
    temperature: float | None = None
    top_p: float | None = None
    max_completion_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None
    overridable: list[str] = field(default_factory=list)
    context_max_tokens: int | None = None
    context_overflow: str = "truncate"
    knowledge_collection_id: str | None = None
    knowledge_max_results: int = 8
    knowledge_min_score: float = 0.0
    knowledge_use_references: bool = False
    query_strategy: str = "Plain"
    query_context_size: int = 3
    # Server-side tools (gateways.tools.spec.ToolSpec as dicts) and the router (gateways.routing), JSON-shaped.
    tools: list[dict[str, Any]] = field(default_factory=list)
    max_tool_rounds: int = 4
    router: dict[str, Any] | None = None

    @property
    def model_name(self) -> str:
        return self.upstreams[0].display_name

    @property
    def is_byo(self) -> bool:
        return self.upstreams[0].tenant_owned

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> GatewayConfig:
        data = json.loads(raw)
        data["upstreams"] = [UpstreamRef(**u) for u in data["upstreams"]]
        return cls(**data)


@lru_cache(maxsize=1024)
def _decrypt(cipher: str) -> str:
    return crypto.decrypt(cipher)


def _catalog_ref(model: CatalogModel) -> UpstreamRef:
    return UpstreamRef(
        base_url=model.base_url,
        model=model.upstream_model,
        api_key_cipher=crypto.encrypt(model.api_key) if model.api_key else "",
        display_name=model.name,
        tenant_owned=False,
        catalog_model_id=str(model.pk),
        context_window=model.context_window,
        wire_api=model.wire_api,
        output_limit_param=model.output_limit_param,
    )


def _byo_ref(endpoint: ByoEndpoint) -> UpstreamRef:
    return UpstreamRef(
        base_url=endpoint.base_url,
        model=endpoint.model_name,
        api_key_cipher=crypto.encrypt(endpoint.api_key) if endpoint.api_key else "",
        display_name=endpoint.model_name,
        tenant_owned=True,
        catalog_model_id=None,
        context_window=endpoint.context_window,
        wire_api=endpoint.wire_api,
        output_limit_param="max_tokens",  # self-hosted servers (llama.cpp, vLLM, Ollama) all read max_tokens
    )


def build_config(gateway: Gateway) -> GatewayConfig:
    from gateways.routing.selectors import route_config
    from gateways.tools.selectors import tool_specs

    primary = _byo_ref(gateway.byo_endpoint) if gateway.byo_endpoint_id else _catalog_ref(gateway.catalog_model)
    fallbacks = {m.pk: m for m in CatalogModel.objects.filter(pk__in=gateway.fallback_model_ids, is_active=True)}
    upstreams = [primary] + [_catalog_ref(fallbacks[pk]) for pk in gateway.fallback_model_ids if pk in fallbacks]
    collection_id = getattr(gateway, "knowledge_collection_id", None)
    return GatewayConfig(
        id=str(gateway.pk),
        organization_id=gateway.organization_id,
        slug=gateway.slug,
        name=gateway.name,
        is_active=gateway.is_active and (gateway.byo_endpoint_id is not None or gateway.catalog_model.is_active),
        upstreams=upstreams,
        system_instruction=gateway.system_instruction,
        user_prompt_template=gateway.user_prompt_template,
        assistant_prefill=gateway.assistant_prefill,
        include_prefill_in_message=gateway.include_prefill_in_message,
        temperature=gateway.temperature,
        top_p=gateway.top_p,
        max_completion_tokens=gateway.max_completion_tokens,
        stop=list(gateway.stop),
        presence_penalty=gateway.presence_penalty,
        frequency_penalty=gateway.frequency_penalty,
        seed=gateway.seed,
        overridable=list(gateway.overridable),
        context_max_tokens=gateway.context_max_tokens,
        context_overflow=gateway.context_overflow,
        knowledge_collection_id=str(collection_id) if collection_id else None,
        knowledge_max_results=gateway.knowledge_max_results,
        knowledge_min_score=gateway.knowledge_min_score,
        knowledge_use_references=gateway.knowledge_use_references,
        query_strategy=gateway.query_strategy,
        query_context_size=gateway.query_context_size,
        tools=[spec.as_dict() for spec in tool_specs(gateway=gateway)],
        max_tool_rounds=gateway.max_tool_rounds,
        router=route_config(gateway=gateway, catalog_ref=_catalog_ref, byo_ref=_byo_ref),
    )


def _lookup(organization_id: int, ref: str) -> dict[str, Any]:
    try:
        return {"pk": uuid.UUID(ref)}
    except ValueError:
        return {"slug": ref}


def _not_found(ref: str) -> NotFound:
    return NotFound(
        f"The model '{ref}' does not exist or you do not have access to it.", param="model", code="model_not_found"
    )


def load_config(organization_id: int, ref: str) -> GatewayConfig:
    gateway = (
        Gateway.objects.for_org(organization_id)
        .select_related("catalog_model", "byo_endpoint", "router_classifier")
        .filter(**_lookup(organization_id, ref))
        .first()
    )
    if gateway is None:
        raise _not_found(ref)
    return build_config(gateway)


async def aresolve_gateway(organization_id: int, ref: str) -> GatewayConfig:
    ref = ref.strip()
    if not ref or len(ref) > 200:
        raise _not_found(ref)
    key = entry_key(organization_id, ref)
    cached = await acache_get(key, what="gateway")
    if cached is not None:
        if cached == b"-":
            raise _not_found(ref)
        return GatewayConfig.from_json(cached)
    try:
        config = await run_db(load_config, organization_id, ref)
    except NotFound:
        await acache_set(key, "-", ex=30, what="gateway")
        raise
    await acache_set(key, config.to_json(), ex=CACHE_TTL_SECONDS, what="gateway")
    return config
