"""Where inference meets billing. A `Meter` is one billable request: every paid step holds its worst case before
it runs (`hold_round`, `hold_amount`), records what it really used (`add_round`, `add_line`), and the request
ends with exactly one `settle` (or `release` when nothing was produced).

The worst case of a model round is its prompt plus the largest answer allowed; the answer is capped to the
smallest of what the request asked, what the gateway allows, the model's window left after the prompt, and what
the balance can pay; the upstream is sent that cap (`max_completion_tokens`), so a round can never cost more
than it held. Prompt tokens are held with a margin (`PROMPT_MARGIN`) over our own count, since the upstream's
tokenizer may count a little more than ours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.conf import settings

from aivax import metrics, tokens
from aivax.outage import DATABASE_ERRORS
from billing import pricing, skus
from billing import services as billing
from billing.money import ZERO, quantize_money
from billing.pricing import UsageLine
from gateways.caller import Caller
from gateways.upstream import Upstream

# The smallest answer worth sending upstream: below it the request is refused with 402 instead.
MIN_ANSWER_TOKENS = 16
# Prompt tokens are held as ours * 1.1 + 16: tokenizers differ a little, and messages have framing overhead.
PROMPT_MARGIN = (Decimal("1.1"), 16)


@dataclass
class Usage:
    """Token counts of one model round, in OpenAI's shape: cached tokens are a part of the prompt tokens and
    reasoning tokens a part of the completion tokens."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False

    @classmethod
    def from_upstream(cls, usage: Any) -> Usage | None:
        if not isinstance(usage, dict) or "prompt_tokens" not in usage:
            return None
        prompt_details = usage.get("prompt_tokens_details") or {}
        completion_details = usage.get("completion_tokens_details") or {}
        return cls(
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            cached_tokens=int(prompt_details.get("cached_tokens") or 0) if isinstance(prompt_details, dict) else 0,
            reasoning_tokens=(
                int(completion_details.get("reasoning_tokens") or 0) if isinstance(completion_details, dict) else 0
            ),
        )

    @classmethod
    def estimate(cls, *, prompt_tokens: int, completion_text: str) -> Usage:
        return cls(prompt_tokens=prompt_tokens, completion_tokens=tokens.count_text(completion_text), estimated=True)

    def as_openai(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }


class TokenTally:
    """The token count of a text that arrives piece by piece (a streamed answer without upstream usage), kept
    incrementally so an open stream holds at most a few KB of its answer, not all of it: whole pieces are counted
    as the text grows, cut before a space (where the tokenizer would split anyway, as `tokens.count_text` does),
    and only the tail since the last cut is kept. `append` takes what `list.append` would have."""

    PIECE_CHARS = 2048

    def __init__(self) -> None:
        self.counted = 0
        self.tail = ""

    def append(self, text: str) -> None:
        self.tail += text
        if len(self.tail) < 2 * self.PIECE_CHARS:
            return
        cut = self.tail.rfind(" ", self.PIECE_CHARS)
        if cut <= 0:  # no space (a long unbroken string): cut anyway, a token or two of estimate error at most
            cut = len(self.tail) - self.PIECE_CHARS
        self.counted += tokens.count_text(self.tail[:cut])
        self.tail = self.tail[cut:]

    def total(self) -> int:
        return self.counted + tokens.count_text(self.tail)


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


def held_prompt_tokens(prompt_tokens: int) -> int:
    factor, extra = PROMPT_MARGIN
    return math.ceil(Decimal(prompt_tokens) * factor) + extra


@dataclass
class Meter:
    """One billable request: who pays, its id, the lines of the rounds already done, and what it holds."""

    caller: Caller
    request_id: str
    gateway_id: str
    metadata: dict[str, str] | None
    lines: list[UsageLine] = field(default_factory=list)
    held: Decimal = ZERO
    opened: bool = False
    settled_lines: list[UsageLine] | None = None
    # The round held last and not recorded yet: (upstream, prompt tokens, SKU prefix), billed as its prompt if
    # the client leaves while it runs.
    pending: tuple[Upstream, int, str] | None = None
    # The price sheets read when rounds were held, per catalog model: a round is priced from them if the
    # database (and so the price cache's reload) is away when it ends; a delivered answer is still priced.
    sheets: dict[UUID, dict[str, Decimal]] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return bool(settings.BILLING_ENABLED)

    @metrics.billing_step("reserve")
    async def hold_amount(self, want: Decimal, minimum: Decimal | None = None) -> Decimal:
        """Hold between `minimum` (default: all of it) and `want` more for this request; 402 when it cannot.
        The first hold opens the request's reservation (a zero hold is refused at the floor: the admission
        check)."""
        if not self.enabled:
            return want
        new = not self.opened
        # From here on, release/settle must close whatever may be held: a client that leaves while the statement
        # runs cancels us after PostgreSQL may have committed it.
        self.opened = True
        held = await billing.ahold(
            organization_id=self.caller.organization_id,
            request_id=self.request_id,
            want=want,
            minimum=want if minimum is None else minimum,
            new=new,
            api_key_id=self.caller.key_id,
            gateway_id=UUID(self.gateway_id),
        )
        self.held += held
        return held

    async def admit(self) -> None:
        """Claim the request id and refuse at once when the balance is at its floor (before any paid work)."""
        if not self.opened:
            await self.hold_amount(ZERO)

    async def hold_round(
        self,
        upstreams: list[Upstream],
        *,
        prompt_tokens: int,
        requested: int | None,
        sku_prefix: str = skus.CHAT_PREFIX,
    ) -> int:
        """Hold the worst case of one model round over `upstreams` (the model and its fallbacks: any may answer)
        and return the answer cap to send upstream. 400 when the prompt leaves no room in the model's window;
        402 (needed, available) when not even a minimal answer can be paid."""
        from aivax.errors import InvalidRequest

        window_left = min(u.context_window for u in upstreams) - prompt_tokens
        limit = window_left if requested is None else min(requested, window_left)
        if limit < 1:
            raise InvalidRequest(
                f"This conversation has about {prompt_tokens} tokens and leaves no room for an answer in the "
                "model's context window.",
                param="messages",
                code="context_length_exceeded",
            )
        prompt_price, completion_price = ZERO, ZERO
        if self.enabled:
            for upstream in upstreams:
                if upstream.tenant_owned or upstream.catalog_model_id is None:
                    continue
                sheet = await pricing.aprice_sheet(catalog_model_id=upstream.catalog_model_id)
                self.sheets[upstream.catalog_model_id] = sheet
                p, c = pricing.worst_unit_prices(sheet, sku_prefix)
                prompt_price, completion_price = max(prompt_price, p), max(completion_price, c)
        fixed = prompt_price * held_prompt_tokens(prompt_tokens)
        minimal = min(MIN_ANSWER_TOKENS, limit)
        held = await self.hold_amount(fixed + completion_price * limit, fixed + completion_price * minimal)
        self.pending = (upstreams[0], prompt_tokens, sku_prefix)
        if completion_price == 0:
            return limit
        # What was held pays the prompt and this many answer tokens (rounded down: never more than held).
        affordable = int((held - quantize_money(fixed)) / completion_price)
        return max(minimal, min(limit, affordable))

    async def add_round(self, upstream: Upstream, usage: Usage, *, sku_prefix: str = skus.CHAT_PREFIX) -> None:
        """Record a finished model round that is not the request's answer (a rewrite, a tool round)."""
        self.pending = None
        if self.enabled:
            self.lines += await self._round_lines(upstream, usage, sku_prefix)

    def add_line(self, line: UsageLine) -> None:
        self.lines.append(line)

    async def _round_lines(self, upstream: Upstream, usage: Usage, sku_prefix: str) -> list[UsageLine]:
        try:
            return await pricing.aprice_chat_completion(
                model_name=upstream.display_name,
                catalog_model_id=upstream.catalog_model_id,
                prompt_tokens=usage.prompt_tokens,
                cached_tokens=usage.cached_tokens,
                completion_tokens=usage.completion_tokens,
                reasoning_tokens=usage.reasoning_tokens,
                estimated=usage.estimated,
                byo=upstream.tenant_owned,
                sku_prefix=sku_prefix,
            )
        except DATABASE_ERRORS:
            sheet = self.sheets.get(upstream.catalog_model_id) if upstream.catalog_model_id else None
            if sheet is None:
                raise
            return pricing._chat_lines(
                sheet,
                upstream.catalog_model_id,
                upstream.display_name,
                usage.prompt_tokens,
                usage.cached_tokens,
                usage.completion_tokens,
                usage.estimated,
                sku_prefix,
                usage.reasoning_tokens,
            )

    @metrics.billing_step("settle")
    async def settle(self, upstream: Upstream | None = None, usage: Usage | None = None) -> list[UsageLine]:
        """Bill the rounds recorded so far plus the final answer's `usage` (exactly once per request id: a
        second call returns the lines already recorded). Returns the lines as the ledger holds them."""
        if not self.enabled:
            return []  # a self-hosted install without billing: nothing is metered or recorded
        if self.settled_lines is not None:
            return self.settled_lines
        self.pending = None
        lines = list(self.lines)
        if upstream is not None and usage is not None:
            lines += await self._round_lines(upstream, usage, skus.CHAT_PREFIX)
        # An answer delivered is never left unbilled: when the database cannot take it now, the settlement is
        # kept (Redis) and written in the background; these are the lines it will write either way.
        self.settled_lines = await billing.asettle_or_defer(
            request_id=self.request_id,
            organization_id=self.caller.organization_id,
            lines=merge_lines(lines),
            gateway_id=UUID(self.gateway_id),
            api_key_id=self.caller.key_id,
            model=upstream.display_name if upstream is not None else "",
            metadata=self.metadata,
        )
        return metrics.record_billed(self.settled_lines)

    async def abandon(self) -> None:
        """The client left before the answer began: bill the rounds done and the prompt of the round that was
        running (the upstream read it; what it wrote after is unknown and not billed), then close the hold."""
        if self.pending is not None and self.enabled:
            upstream, prompt_tokens, sku_prefix = self.pending
            await self.add_round(upstream, Usage(prompt_tokens, 0, estimated=True), sku_prefix=sku_prefix)
        await self.release()

    @metrics.billing_step("release")
    async def release(self) -> None:
        """Nothing was produced: free the hold. Rounds already done (a rewrite, a search) are still billed."""
        if not self.opened:
            return
        if self.lines:
            await self.settle()
        else:
            await billing.arelease(request_id=self.request_id)
        self.opened = False
