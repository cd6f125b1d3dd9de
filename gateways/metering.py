"""Where inference meets billing: estimate and reserve before the upstream call, settle what was really used
after it (exactly once per request id), release when nothing was produced."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.conf import settings

from aivax import metrics, tokens
from billing import pricing
from billing import services as billing
from billing.money import quantize_money
from billing.pricing import UsageLine
from gateways.upstream import Upstream


@dataclass
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    estimated: bool = False

    @classmethod
    def from_upstream(cls, usage: dict[str, Any] | None) -> Usage | None:
        if not isinstance(usage, dict) or "prompt_tokens" not in usage:
            return None
        details = usage.get("prompt_tokens_details") or {}
        return cls(
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            cached_tokens=int((details or {}).get("cached_tokens") or 0),
        )

    @classmethod
    def estimate(cls, *, prompt_tokens: int, completion_text: str) -> Usage:
        return cls(prompt_tokens=prompt_tokens, completion_tokens=tokens.count_text(completion_text), estimated=True)


def merge_lines(lines: list[UsageLine]) -> list[UsageLine]:
    """One line per SKU, as the ledger holds them (a request is charged once per SKU). Several model rounds of
    one request (server-side tool calls) add up; if their unit prices differed (a fallback model answered one
    round), the merged line carries the exact total and the average unit price."""
    merged: dict[str, UsageLine] = {}
    for line in lines:
        previous = merged.get(line.sku)
        if previous is None:
            merged[line.sku] = line
            continue
        quantity = previous.quantity + line.quantity
        amount = previous.amount + line.amount
        unit_price = previous.unit_price
        if line.unit_price != previous.unit_price and quantity:
            unit_price = quantize_money(amount / quantity)
        merged[line.sku] = UsageLine(
            sku=line.sku,
            quantity=quantity,
            unit_price=unit_price,
            amount=amount,
            description=previous.description,
            estimated=previous.estimated or line.estimated,
        )
    return list(merged.values())


@dataclass
class Meter:
    """One billable request: its id, who pays, and the extra lines (grounding, rewrites) gathered on the way."""

    request_id: str
    organization_id: int
    gateway_id: str
    api_key_id: UUID | None
    metadata: dict[str, str] | None
    extra_lines: list[UsageLine] = field(default_factory=list)
    reserved: bool = False

    @metrics.billing_step("reserve")
    async def reserve(self, upstream: Upstream, *, prompt_tokens: int, max_completion_tokens: int) -> None:
        if not settings.BILLING_ENABLED:
            return
        amount = Decimal(0)
        if not upstream.tenant_owned:
            amount = await pricing.aestimate_max_cost(
                catalog_model_id=upstream.catalog_model_id,
                prompt_tokens=prompt_tokens,
                max_completion_tokens=max_completion_tokens,
            )
        amount += sum((line.amount for line in self.extra_lines), Decimal(0))
        await billing.areserve(organization_id=self.organization_id, request_id=self.request_id, amount=amount)
        self.reserved = True

    @metrics.billing_step("settle")
    async def settle(self, upstream: Upstream, usage: Usage) -> list[UsageLine]:
        if not settings.BILLING_ENABLED:
            return []  # a self-hosted install without billing: nothing is metered or recorded
        lines = list(self.extra_lines)
        lines += await pricing.aprice_chat_completion(
            model_name=upstream.display_name,
            catalog_model_id=upstream.catalog_model_id,
            prompt_tokens=usage.prompt_tokens,
            cached_tokens=usage.cached_tokens,
            completion_tokens=usage.completion_tokens,
            estimated=usage.estimated,
            byo=upstream.tenant_owned,
        )
        settled = await billing.asettle(
            request_id=self.request_id,
            organization_id=self.organization_id,
            lines=merge_lines(lines),
            gateway_id=UUID(self.gateway_id),
            api_key_id=self.api_key_id,
            model=upstream.display_name,
            metadata=self.metadata,
        )
        return metrics.record_billed(settled)

    @metrics.billing_step("release")
    async def release(self) -> None:
        if self.reserved:
            await billing.arelease(request_id=self.request_id)
            self.reserved = False
