"""The model catalog (platform-wide), tenants' own endpoints, and gateways."""

from __future__ import annotations

import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from aivax.crypto import EncryptedTextField
from aivax.tenancy import TenantModel


class WireApi(models.TextChoices):
    """Which OpenAI API an upstream speaks; the gateway's callers may use either (gateways/responses/wire.py)."""

    CHAT_COMPLETIONS = "chat_completions", "Chat Completions (/chat/completions)"
    RESPONSES = "responses", "Responses (/responses)"


class CatalogModel(models.Model):
    """A model the platform offers, e.g. `@openai/gpt-4o-mini`. Prices per SKU live in billing.Price."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True, help_text="Addressable name, e.g. @openai/gpt-4o-mini")
    base_url = models.URLField(help_text="OpenAI-compatible base URL, e.g. https://api.openai.com/v1")
    upstream_model = models.CharField(max_length=200)
    api_key = EncryptedTextField(blank=True, default="", help_text="Stored encrypted")
    context_window = models.PositiveIntegerField(default=8192)
    wire_api = models.CharField(max_length=20, choices=WireApi.choices, default=WireApi.CHAT_COMPLETIONS)
    output_limit_param = models.CharField(
        max_length=32,
        choices=[("max_completion_tokens", "max_completion_tokens"), ("max_tokens", "max_tokens")],
        default="max_completion_tokens",
        help_text="The parameter this upstream reads the answer's token cap from (older servers: max_tokens)",
    )
    capabilities = ArrayField(models.CharField(max_length=32), default=list, blank=True)
    description = models.TextField(blank=True, default="")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ByoEndpoint(TenantModel):
    """A tenant's own OpenAI-compatible endpoint. Never sent the platform's keys."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    base_url = models.URLField()
    model_name = models.CharField(max_length=200)
    api_key = EncryptedTextField(blank=True, default="")
    context_window = models.PositiveIntegerField(default=8192)
    wire_api = models.CharField(max_length=20, choices=WireApi.choices, default=WireApi.CHAT_COMPLETIONS)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name = "bring-your-own endpoint"

    def __str__(self) -> str:
        return f"{self.name} ({self.model_name})"


class OverflowAction(models.TextChoices):
    TRUNCATE = "truncate", "Truncate oldest messages"
    THROW = "throw", "Refuse with an error"


class QueryStrategy(models.TextChoices):
    PLAIN = "Plain", "Plain: the last user message"
    CONCATENATE = "Concatenate", "Concatenate the last N user messages"
    USER_REWRITE = "UserRewrite", "Rewrite the last N user messages into one question"
    FULL_REWRITE = "FullRewrite", "Rewrite the last 2N messages into one question"
    QUERY_FUNCTION = "QueryFunction", "Give the model a search function"


class Overridable(models.TextChoices):
    """Request parameters a gateway may let callers change."""

    TEMPERATURE = "temperature"
    TOP_P = "top_p"
    MAX_TOKENS = "max_tokens"
    STOP = "stop"
    SEED = "seed"
    PRESENCE_PENALTY = "presence_penalty"
    FREQUENCY_PENALTY = "frequency_penalty"
    TOOLS = "tools"
    RESPONSE_FORMAT = "response_format"


def default_overridable() -> list[str]:
    return [
        Overridable.TEMPERATURE,
        Overridable.TOP_P,
        Overridable.MAX_TOKENS,
        Overridable.STOP,
        Overridable.SEED,
        Overridable.TOOLS,
        Overridable.RESPONSE_FORMAT,
    ]


class Gateway(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    slug = models.CharField(max_length=80, help_text="Addressable as model='name:xxxx'")
    catalog_model = models.ForeignKey(CatalogModel, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    byo_endpoint = models.ForeignKey(ByoEndpoint, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # Catalog models tried in order when the primary one fails before the first byte.
    fallback_model_ids = ArrayField(models.UUIDField(), default=list, blank=True)
    monthly_budget = models.DecimalField(
        max_digits=20, decimal_places=10, null=True, blank=True,
        help_text="USD this gateway may spend per calendar month (UTC); empty: no cap",
    )  # fmt: skip

    system_instruction = models.TextField(blank=True, default="")
    user_prompt_template = models.TextField(blank=True, default="", help_text="Must contain {prompt} when set")
    assistant_prefill = models.TextField(blank=True, default="")
    include_prefill_in_message = models.BooleanField(default=True)

    temperature = models.FloatField(null=True, blank=True)
    top_p = models.FloatField(null=True, blank=True)
    max_completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    stop = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    presence_penalty = models.FloatField(null=True, blank=True)
    frequency_penalty = models.FloatField(null=True, blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    overridable = ArrayField(
        models.CharField(max_length=32, choices=Overridable.choices), default=default_overridable, blank=True
    )

    context_max_tokens = models.PositiveIntegerField(null=True, blank=True)
    context_overflow = models.CharField(max_length=16, choices=OverflowAction.choices, default=OverflowAction.TRUNCATE)

    # Grounding: how a linked knowledge collection is searched (the link is added with the knowledge models).
    knowledge_collection = models.ForeignKey(
        "knowledge.Collection", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    knowledge_max_results = models.PositiveSmallIntegerField(default=8)
    knowledge_min_score = models.FloatField(default=0.0)
    knowledge_use_references = models.BooleanField(default=False)
    query_strategy = models.CharField(max_length=16, choices=QueryStrategy.choices, default=QueryStrategy.PLAIN)
    query_context_size = models.PositiveSmallIntegerField(default=3, help_text="N for Concatenate / rewrites")

    # Server-side tools (gateways/tools): how many model rounds may run tools before the answer must come.
    max_tool_rounds = models.PositiveSmallIntegerField(default=4)
    # Model router (gateways/routing): set, with route candidates, to rate each request and pick a model; the
    # gateway's own model answers when no band matches or the classifier fails.
    router_classifier = models.ForeignKey(
        CatalogModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "slug"], name="gateway_slug_unique_per_org"),
            models.CheckConstraint(
                condition=(
                    models.Q(catalog_model__isnull=False, byo_endpoint__isnull=True)
                    | models.Q(catalog_model__isnull=True, byo_endpoint__isnull=False)
                ),
                name="gateway_exactly_one_model",
            ),
        ]

    def __str__(self) -> str:
        return self.slug


# Stored responses live with the Responses API (gateways/responses/); imported here so the gateways app owns them.
from gateways.responses.models import StoredResponse  # noqa: E402, F401
from gateways.routing.models import RouteCandidate  # noqa: E402, F401
from gateways.tools.models import GatewayTool, HttpFunction, McpServer  # noqa: E402, F401
