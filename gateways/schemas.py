"""The AIVAX-shaped management API for gateways: camelCase `parameters` <-> Gateway fields."""

from __future__ import annotations

from typing import Any

from ninja import Schema
from pydantic import ConfigDict, Field

from gateways.models import Gateway


class GatewayParameters(Schema):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(default=None, description="A catalog model name, e.g. @local/smollm2-135m")
    baseAddress: str | None = Field(default=None, description="Your own OpenAI-compatible base URL")
    modelName: str | None = None
    apiKey: str | None = None
    fallbackModels: list[str] | None = None
    systemInstruction: str | None = None
    userPromptTemplate: str | None = None
    assistantPrefill: str | None = None
    includePrefillingInMessages: bool | None = None
    temperature: float | None = None
    topP: float | None = None
    presencePenalty: float | None = None
    frequencyPenalty: float | None = None
    stop: list[str] | None = None
    maxCompletionTokens: int | None = None
    seed: int | None = None
    overridable: list[str] | None = None
    contextMaximumSize: int | None = None
    contextOverflowAction: str | None = Field(default=None, description="Truncate or Throw")
    knowledgeCollectionId: str | None = None
    knowledgeBaseMaximumResults: int | None = None
    knowledgeBaseMinimumScore: float | None = None
    knowledgeUseReferences: bool | None = None
    queryStrategy: str | None = None
    queryStrategyParameters: dict[str, int] | None = None
    isActive: bool | None = None


class GatewayIn(Schema):
    name: str = Field(min_length=1, max_length=100)
    parameters: GatewayParameters = Field(default_factory=GatewayParameters)


class GatewayPatch(Schema):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    parameters: GatewayParameters | None = None


# camelCase parameter -> Gateway field, for the parameters that map one to one.
SIMPLE_FIELDS = {
    "systemInstruction": "system_instruction",
    "userPromptTemplate": "user_prompt_template",
    "assistantPrefill": "assistant_prefill",
    "includePrefillingInMessages": "include_prefill_in_message",
    "temperature": "temperature",
    "topP": "top_p",
    "presencePenalty": "presence_penalty",
    "frequencyPenalty": "frequency_penalty",
    "stop": "stop",
    "maxCompletionTokens": "max_completion_tokens",
    "seed": "seed",
    "overridable": "overridable",
    "contextMaximumSize": "context_max_tokens",
    "knowledgeBaseMaximumResults": "knowledge_max_results",
    "knowledgeBaseMinimumScore": "knowledge_min_score",
    "knowledgeUseReferences": "knowledge_use_references",
    "queryStrategy": "query_strategy",
    "isActive": "is_active",
}


def gateway_out(gateway: Gateway) -> dict[str, Any]:
    model = gateway.catalog_model.name if gateway.catalog_model_id else None
    byo = gateway.byo_endpoint if gateway.byo_endpoint_id else None
    params: dict[str, Any] = {camel: getattr(gateway, field) for camel, field in SIMPLE_FIELDS.items()}
    params.update(
        model=model,
        baseAddress=byo.base_url if byo else None,
        modelName=byo.model_name if byo else None,
        apiKey="(set)" if byo and byo.api_key else None,  # never returned
        contextOverflowAction="Throw" if gateway.context_overflow == "throw" else "Truncate",
        queryStrategyParameters={
            "rewriteContextSize": gateway.query_context_size,
            "concatenateContextSize": gateway.query_context_size,
        },
        knowledgeCollectionId=str(gateway.knowledge_collection_id)
        if getattr(gateway, "knowledge_collection_id", None)
        else None,
        fallbackModels=[str(pk) for pk in gateway.fallback_model_ids],
    )
    return {
        "id": str(gateway.pk),
        "name": gateway.name,
        "slug": gateway.slug,
        "createdAt": gateway.created_at.isoformat(),
        "updatedAt": gateway.updated_at.isoformat(),
        "parameters": params,
    }
