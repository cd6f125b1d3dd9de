"""The AIVAX-shaped management API for gateways: camelCase `parameters` <-> Gateway fields."""

from __future__ import annotations

from typing import Annotated, Any

from ninja import Schema
from pydantic import ConfigDict, Field, StringConstraints, field_validator

from aivax.inputs import HttpUrlText
from gateways.models import Gateway
from gateways.tools import parameters as tool_parameters

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
TEXT_MAX = 100_000  # system instructions, templates and prefills: generous, but bounded
# Parameters stored in columns that cannot hold null: an explicit null is refused (omit the field instead).
NOT_NULL = (
    "systemInstruction",
    "userPromptTemplate",
    "assistantPrefill",
    "includePrefillingInMessages",
    "knowledgeBaseMaximumResults",
    "knowledgeBaseMinimumScore",
    "knowledgeUseReferences",
    "queryStrategy",
    "isActive",
)


class GatewayParameters(Schema):
    """Bounds mirror the Gateway columns (lengths, integer widths, not-null), so bad input is a 400 here rather
    than a database error later."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(
        default=None, max_length=200, description="A catalog model name, e.g. @local/smollm2-135m"
    )
    baseAddress: HttpUrlText | None = Field(default=None, description="Your own OpenAI-compatible base URL")
    modelName: str | None = Field(default=None, max_length=100)
    apiKey: str | None = Field(default=None, max_length=4096)
    fallbackModels: list[Annotated[str, StringConstraints(max_length=200)]] | None = Field(default=None, max_length=8)
    systemInstruction: str | None = Field(default=None, max_length=TEXT_MAX)
    userPromptTemplate: str | None = Field(default=None, max_length=TEXT_MAX)
    assistantPrefill: str | None = Field(default=None, max_length=TEXT_MAX)
    includePrefillingInMessages: bool | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    topP: float | None = Field(default=None, ge=0, le=1)
    presencePenalty: float | None = Field(default=None, ge=-2, le=2)
    frequencyPenalty: float | None = Field(default=None, ge=-2, le=2)
    stop: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] | None = Field(
        default=None, max_length=4
    )
    maxCompletionTokens: int | None = Field(default=None, ge=1, le=INT32_MAX)
    seed: int | None = Field(default=None, ge=-INT64_MAX - 1, le=INT64_MAX)
    overridable: list[Annotated[str, StringConstraints(max_length=32)]] | None = Field(default=None, max_length=32)
    contextMaximumSize: int | None = Field(default=None, ge=1, le=INT32_MAX)
    contextOverflowAction: str | None = Field(default=None, max_length=16, description="Truncate or Throw")
    knowledgeCollectionId: str | None = Field(default=None, max_length=64)
    knowledgeBaseMaximumResults: int | None = Field(default=None, ge=1, le=100)
    knowledgeBaseMinimumScore: float | None = Field(default=None, ge=0, le=1)
    knowledgeUseReferences: bool | None = None
    queryStrategy: str | None = Field(default=None, max_length=16)
    queryStrategyParameters: dict[str, Annotated[int, Field(ge=1, le=50)]] | None = None
    isActive: bool | None = None
    # Server-side tools and the model router (gateways/tools/parameters.py documents the shapes).
    functions: list[str] | None = None
    mcpTools: list[dict[str, str]] | None = None
    maxToolRounds: int | None = Field(default=None, ge=1, le=10)
    router: dict[str, Any] | None = None

    @field_validator(*NOT_NULL)
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null (leave it out to keep the current value)")
        return value


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
    "maxToolRounds": "max_tool_rounds",
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
    params.update(tool_parameters.out(gateway))
    return {
        "id": str(gateway.pk),
        "name": gateway.name,
        "slug": gateway.slug,
        "createdAt": gateway.created_at.isoformat(),
        "updatedAt": gateway.updated_at.isoformat(),
        "parameters": params,
    }
