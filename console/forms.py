"""Console forms. They only parse and present: validation of the values lives in the services, whose
`InvalidRequest.param` is mapped back onto the field here (`attach_error`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.utils import timezone

from accounts.models import KeyKind, Organization, Scope
from aivax.errors import InvalidRequest
from console import optional
from gateways.models import ByoEndpoint, CatalogModel, Gateway, OverflowAction, Overridable, QueryStrategy, WireApi
from quotas.policy import Limits

# Service parameter names that belong to a differently named form field.
PARAM_TO_FIELD = {
    "catalog_model": "model",
    "byo_endpoint": "model",
    "fallback_model_ids": "fallback_models",
    "allowed_gateway_ids": "gateways",
    "type": "kind",
    "tools": "server_tools",
    "functions": "server_tools",
    "mcpTools": "server_tools",
    "router": "router_candidates",
    "router.classifier": "router_classifier",
}


def attach_error(form: forms.Form, exc: InvalidRequest) -> None:
    """Show a service's validation message next to the field it names (or above the form)."""
    name = PARAM_TO_FIELD.get(exc.param or "", exc.param)
    form.add_error(name if name in form.fields else None, exc.message)


def split_stop(text: str) -> list[str]:
    """Stop sequences: one per line, or separated by commas when written on one line."""
    text = (text or "").strip()
    if not text:
        return []
    parts = text.splitlines() if "\n" in text else text.split(",")
    return [p.strip() for p in parts if p.strip()]


def _number(step: str, placeholder: str = "") -> forms.NumberInput:
    attrs = {"step": step}
    if placeholder:
        attrs["placeholder"] = placeholder
    return forms.NumberInput(attrs=attrs)


class GatewayForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100, help_text="Also the start of its addressable slug.")
    model = forms.ChoiceField(label="Model", help_text="A model from the catalog, or your own endpoint.")
    fallback_models = forms.MultipleChoiceField(
        label="Fallback models",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Tried in order when the model fails before answering.",
    )
    system_instruction = forms.CharField(
        label="Instructions",
        required=False,
        widget=forms.Textarea(attrs={"rows": 5, "placeholder": "You are a helpful assistant for…"}),
        help_text="The system message sent before every conversation.",
    )
    user_prompt_template = forms.CharField(
        label="User prompt template",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "Answer briefly: {prompt}"}),
        help_text="Wraps the last user message; must contain {prompt}.",
    )
    assistant_prefill = forms.CharField(
        label="Assistant prefill",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="The start of every answer, which the model continues.",
    )
    include_prefill_in_message = forms.BooleanField(
        label="Include the prefill in the returned message", required=False, initial=True
    )
    temperature = forms.FloatField(label="Temperature", required=False, widget=_number("0.05", "default"))
    top_p = forms.FloatField(label="Top p", required=False, widget=_number("0.05", "default"))
    max_completion_tokens = forms.IntegerField(
        label="Max completion tokens", required=False, widget=_number("1", "default")
    )
    stop = forms.CharField(
        label="Stop sequences",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Up to 4, one per line or separated by commas.",
    )
    presence_penalty = forms.FloatField(label="Presence penalty", required=False, widget=_number("0.1", "default"))
    frequency_penalty = forms.FloatField(label="Frequency penalty", required=False, widget=_number("0.1", "default"))
    seed = forms.IntegerField(label="Seed", required=False, widget=_number("1", "random"))
    overridable = forms.MultipleChoiceField(
        label="Parameters a request may override",
        required=False,
        choices=[(v, v) for v in Overridable.values],
        widget=forms.CheckboxSelectMultiple,
        help_text="The others are fixed by the gateway.",
    )
    context_max_tokens = forms.IntegerField(
        label="Context limit (tokens)",
        required=False,
        min_value=1,
        widget=_number("1", "model's window"),
    )
    context_overflow = forms.ChoiceField(label="When the conversation is too long", choices=OverflowAction.choices)
    query_strategy = forms.ChoiceField(label="Query strategy", choices=QueryStrategy.choices)
    knowledge_max_results = forms.IntegerField(label="Max results", min_value=0, max_value=100)
    knowledge_min_score = forms.FloatField(label="Minimum score", widget=_number("0.05"), help_text="0 to 1.")
    knowledge_use_references = forms.BooleanField(label="Cite references in answers", required=False)
    query_context_size = forms.IntegerField(
        label="Query context size", min_value=1, max_value=50, help_text="N for Concatenate and the rewrites."
    )
    is_active = forms.BooleanField(label="Active", required=False, initial=True)
    # Server-side tools and the router: saved by `save_tools_and_router`, not by gateway_create/update.
    server_tools = forms.MultipleChoiceField(
        label="Tools the model may call",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="They run on the server during the answer; their calls are listed in runned_functions.",
    )
    max_tool_rounds = forms.IntegerField(
        label="Max tool rounds", required=False, min_value=1, max_value=10, widget=_number("1", "4")
    )
    router_classifier = forms.ChoiceField(
        label="Route with classifier",
        required=False,
        help_text="Rates each request 1-10 and picks a model below; the gateway's model answers otherwise.",
    )
    router_candidates = forms.CharField(
        label="Candidate models",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "@openai/gpt-4o-mini 1-5\n@openai/gpt-4o 6-10"}),
        help_text="One per line, in order: a catalog model or one of your endpoints, then its band (1-10).",
    )

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.organization = organization
        catalog = list(CatalogModel.objects.filter(is_active=True).order_by("name"))
        endpoints = list(ByoEndpoint.objects.for_org(organization).order_by("name"))
        self._catalog = {f"catalog:{m.pk}": m for m in catalog}
        self._endpoints = {f"byo:{e.pk}": e for e in endpoints}
        choices: list[Any] = [("", "Choose a model…")]
        if catalog:
            choices.append(("Catalog", [(k, m.name) for k, m in self._catalog.items()]))
        if endpoints:
            choices.append(("Your endpoints", [(k, str(e)) for k, e in self._endpoints.items()]))
        self.fields["model"].choices = choices
        self.fields["fallback_models"].choices = [(str(m.pk), m.name) for m in catalog]
        self._tool_choices(organization, catalog)
        collections = optional.collections_for(organization)
        if collections is not None:
            self.fields["knowledge_collection"] = forms.ChoiceField(
                label="Knowledge collection",
                required=False,
                choices=[("", "None: no grounding")] + [(str(c.pk), c.name) for c in collections],
                help_text="Answers are grounded on documents found in this collection.",
            )
            self._collections = {str(c.pk): c for c in collections}

    @property
    def has_knowledge(self) -> bool:
        return "knowledge_collection" in self.fields

    @classmethod
    def initial_for(cls, gateway: Gateway | None) -> dict[str, Any]:
        if gateway is None:
            return {
                "overridable": [str(o) for o in Gateway._meta.get_field("overridable").get_default()],
                "include_prefill_in_message": True,
                "is_active": True,
                "context_overflow": OverflowAction.TRUNCATE,
                "query_strategy": QueryStrategy.PLAIN,
                "knowledge_max_results": 8,
                "knowledge_min_score": 0.0,
                "query_context_size": 3,
                "max_tool_rounds": 4,
            }
        data = {name: getattr(gateway, name) for name in cls.base_fields if hasattr(gateway, name)}
        data["model"] = (
            f"catalog:{gateway.catalog_model_id}" if gateway.catalog_model_id else f"byo:{gateway.byo_endpoint_id}"
        )
        data["fallback_models"] = [str(i) for i in gateway.fallback_model_ids]
        data["stop"] = "\n".join(gateway.stop)
        collection_id = getattr(gateway, "knowledge_collection_id", None)
        data["knowledge_collection"] = str(collection_id) if collection_id else ""
        data.update(cls._tool_initial(gateway))
        return data

    def _tool_choices(self, organization: Organization, catalog: list[CatalogModel]) -> None:
        from gateways.tools.selectors import http_function_list, mcp_server_list

        self._functions = {f"fn:{f.pk}": f for f in http_function_list(organization=organization)}
        self._mcp_tools = {
            f"mcp:{s.pk}:{t['name']}": (s, t["name"])
            for s in mcp_server_list(organization=organization)
            for t in s.tools
        }
        self.fields["server_tools"].choices = [(k, f"{f.name} (HTTP)") for k, f in self._functions.items()] + [
            (k, f"{name} ({server.name}, MCP)") for k, (server, name) in self._mcp_tools.items()
        ]
        self.fields["router_classifier"].choices = [("", "No routing")] + [(m.name, m.name) for m in catalog]

    @staticmethod
    def _tool_initial(gateway: Gateway) -> dict[str, Any]:
        from gateways.routing.selectors import route_candidate_list
        from gateways.tools.selectors import gateway_tool_list

        tools = [
            f"fn:{t.http_function_id}" if t.http_function_id else f"mcp:{t.mcp_server_id}:{t.mcp_tool_name}"
            for t in gateway_tool_list(gateway=gateway)
        ]
        lines = []
        for c in route_candidate_list(gateway=gateway):
            name = c.catalog_model.name if c.catalog_model_id else c.byo_endpoint.name
            lines.append(f"{name} {c.min_complexity}-{c.max_complexity}")
        return {
            "server_tools": tools,
            "router_classifier": gateway.router_classifier.name if gateway.router_classifier_id else "",
            "router_candidates": "\n".join(lines),
        }

    def _candidates(self, organization: Organization) -> list[Any]:
        from gateways.routing.services import CandidateIn

        endpoints = {e.name: e for e in self._endpoints.values()}
        catalog = {m.name: m for m in self._catalog.values()}
        out = []
        for number, line in enumerate((self.cleaned_data.get("router_candidates") or "").splitlines(), start=1):
            if not line.strip():
                continue
            name, _, band = line.strip().rpartition(" ")
            low, _, high = band.partition("-")
            if not name or not low.isdigit() or not high.isdigit():
                raise InvalidRequest(f"Line {number}: write a model, a space and a band like 1-5.", param="router")
            name = name.strip()
            if name not in catalog and name not in endpoints:
                raise InvalidRequest(f"Line {number}: unknown model '{name}'.", param="router")
            out.append(
                CandidateIn(
                    catalog_model=catalog.get(name),
                    byo_endpoint=None if name in catalog else endpoints[name],
                    min_complexity=int(low),
                    max_complexity=int(high),
                )
            )
        return out

    def save_tools_and_router(self, gateway: Gateway) -> None:
        """After gateway_create/update, in the same transaction: the tools and the router of the form."""
        from gateways.routing.services import gateway_router_set
        from gateways.tools.services import gateway_tools_set

        chosen = self.cleaned_data.get("server_tools") or []
        gateway_tools_set(
            gateway=gateway,
            http_functions=[self._functions[k] for k in chosen if k in self._functions],
            mcp_tools=[self._mcp_tools[k] for k in chosen if k in self._mcp_tools],
        )
        classifier_name = self.cleaned_data.get("router_classifier") or ""
        classifier = next((m for m in self._catalog.values() if m.name == classifier_name), None)
        candidates = self._candidates(gateway.organization) if classifier else []
        gateway_router_set(gateway=gateway, classifier=classifier, candidates=candidates)

    def service_fields(self) -> dict[str, Any]:
        """The cleaned values, named as `gateway_create` / `gateway_update` take them."""
        data = dict(self.cleaned_data)
        for key in ("server_tools", "router_classifier", "router_candidates"):
            data.pop(key, None)
        data["max_tool_rounds"] = data.get("max_tool_rounds") or 4
        model_key = data.pop("model")
        data["catalog_model"] = self._catalog.get(model_key)
        data["byo_endpoint"] = self._endpoints.get(model_key)
        data["fallback_model_ids"] = [self._catalog[f"catalog:{i}"].pk for i in data.pop("fallback_models")]
        data["stop"] = split_stop(data["stop"])
        if self.has_knowledge:
            data["knowledge_collection"] = self._collections.get(data.pop("knowledge_collection") or "")
        return data


class ByoEndpointForm(forms.Form):
    prefix = "byo"  # shown on the gateway form's page: its ids must not clash with the gateway's fields

    name = forms.CharField(
        label="Endpoint name", max_length=100, widget=forms.TextInput(attrs={"placeholder": "My vLLM"})
    )
    base_url = forms.CharField(
        label="Base URL",
        max_length=200,
        widget=forms.URLInput(attrs={"placeholder": "https://llm.example.com/v1"}),
        help_text="An OpenAI-compatible API (…/v1).",
    )
    model_name = forms.CharField(label="Upstream model name", max_length=200)
    api_key = forms.CharField(
        label="API key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
        help_text="Stored encrypted; never shown again.",
    )
    context_window = forms.IntegerField(label="Context window (tokens)", min_value=256, initial=8192)
    wire_api = forms.ChoiceField(
        label="API it speaks",
        choices=WireApi.choices,
        initial=WireApi.CHAT_COMPLETIONS,
        required=False,
        help_text="Your callers may use either API; this is what aivax sends to the endpoint.",
    )

    def clean_wire_api(self) -> str:
        return self.cleaned_data.get("wire_api") or WireApi.CHAT_COMPLETIONS


EXPIRY_CHOICES = [("", "Never"), ("7", "In 7 days"), ("30", "In 30 days"), ("90", "In 90 days"), ("365", "In a year")]


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label="Name", max_length=100, widget=forms.TextInput(attrs={"placeholder": "Production backend"})
    )
    scopes = forms.MultipleChoiceField(
        label="Scopes",
        choices=Scope.choices,
        initial=[Scope.INFERENCE],
        widget=forms.CheckboxSelectMultiple,
        help_text="Inference calls gateways; knowledge manages documents; admin manages gateways.",
    )
    expires_in = forms.ChoiceField(label="Expires", choices=EXPIRY_CHOICES, required=False)
    gateways = forms.MultipleChoiceField(
        label="Only these gateways",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Leave all unchecked to allow every gateway.",
    )
    kind = forms.ChoiceField(
        label="Type",
        choices=KeyKind.choices,
        initial=KeyKind.SECRET,
        required=False,  # secret when left out
        widget=forms.RadioSelect,
        help_text="A public key is safe in a web page: inference only, on the gateways ticked, from the origins below.",
    )
    allowed_origins = forms.CharField(
        label="Allowed origins (public keys)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "https://www.example.com"}),
        help_text="The web pages' origins, one per line.",
    )
    requests_per_minute = forms.IntegerField(label="Requests per minute", required=False, min_value=1)
    requests_per_day = forms.IntegerField(label="Requests per day", required=False, min_value=1)
    tokens_per_minute = forms.IntegerField(label="Tokens per minute", required=False, min_value=1)

    def __init__(self, *args: Any, organization: Organization, allow_admin: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not allow_admin:
            self.fields["scopes"].choices = [c for c in Scope.choices if c[0] != Scope.ADMIN]
            self.fields["scopes"].help_text = "Inference calls gateways; knowledge manages documents."
        gateways = Gateway.objects.for_org(organization).order_by("name")
        self.fields["gateways"].choices = [(str(g.pk), g.name) for g in gateways]

    def expires_at(self) -> dt.datetime | None:
        days = self.cleaned_data.get("expires_in")
        return timezone.now() + dt.timedelta(days=int(days)) if days else None

    def origins(self) -> list[str]:
        return [line.strip() for line in (self.cleaned_data.get("allowed_origins") or "").splitlines() if line.strip()]

    def limits(self) -> Limits:
        return Limits.of(self.cleaned_data)
