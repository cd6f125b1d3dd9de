"""The router's rating round: ask the classifier to rate the last turn, pick the candidate whose band holds the
rating. The round is held before it runs and billed as ``inference.resolving.routing_complexity.in/.out``. It
never fails the request: a classifier that errs, times out (ROUTER_CLASSIFIER_TIMEOUT) or answers no number
leaves the gateway's own model (and its fallbacks) to answer, and the reason is in ``x-aivax-route``. Only a
balance that cannot pay even the rating is an error (402), as it could not pay the answer either.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from aivax import tokens
from billing import skus
from gateways.metering import Meter, Usage
from gateways.resolve import GatewayConfig, UpstreamRef
from gateways.routing.classify import CLASSIFIER_MAX_TOKENS, Band, choose, classifier_messages, last_turn, parse_rating
from gateways.upstream import Upstream, UpstreamFailure, open_exchange, read_json

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    upstreams: list[Upstream]  # the chosen model first, then the gateway's own chain
    complexity: int | None
    reason: str

    def header(self) -> str:
        rating = "none" if self.complexity is None else str(self.complexity)
        return f"{self.upstreams[0].display_name}; complexity={rating}; reason={self.reason}"


async def _rate(classifier: Upstream, turn: str, meter: Meter) -> tuple[int | None, str]:
    """(rating, reason). The round is recorded in the meter whenever the classifier answered."""
    messages = classifier_messages(turn)
    prompt_tokens = tokens.count_messages(messages)
    cap = await meter.hold_round(
        [classifier], prompt_tokens=prompt_tokens, requested=CLASSIFIER_MAX_TOKENS, sku_prefix=skus.ROUTING_PREFIX
    )
    payload: dict[str, Any] = {"messages": messages, "max_completion_tokens": cap, "temperature": 0}
    try:
        async with asyncio.timeout(settings.ROUTER_CLASSIFIER_TIMEOUT):
            # One attempt: a router that waits out retries and backoff delays every answer; the default is at hand.
            response = await open_exchange(classifier, payload, stream=False)
            data = await read_json(response)
    except (UpstreamFailure, TimeoutError) as exc:
        meter.pending = None  # nothing came back: the hold is freed with the request's at settlement
        reason = "classifier-timeout" if isinstance(exc, TimeoutError) else "classifier-error"
        logger.info("router classifier %s failed: %r", classifier.display_name, exc)
        return None, reason
    answer = (((data.get("choices") or [{}])[0] or {}).get("message") or {}).get("content") or ""
    usage = Usage.from_upstream(data.get("usage")) or Usage.estimate(
        prompt_tokens=prompt_tokens, completion_text=str(answer)
    )
    await meter.add_round(classifier, usage, sku_prefix=skus.ROUTING_PREFIX)
    rating = parse_rating(str(answer))
    return rating, "rated" if rating is not None else "unreadable-rating"


async def aroute(config: GatewayConfig, messages: list[dict[str, Any]], meter: Meter) -> Route:
    """Choose the model for this request (`config.router` must be set)."""
    router = config.router or {}
    default = [ref.upstream() for ref in config.upstreams]
    turn = last_turn(messages)
    if not turn:
        return Route(default, None, "no-user-message")
    classifier = UpstreamRef(**router["classifier"]).upstream()
    rating, reason = await _rate(classifier, turn, meter)
    if rating is None:
        return Route(default, None, reason)
    candidates = router["candidates"]
    index = choose([Band(c["low"], c["high"]) for c in candidates], rating)
    if index is None:
        return Route(default, rating, "no-band")
    chosen = UpstreamRef(**candidates[index]["upstream"]).upstream()
    rest = [u for u in default if u.display_name != chosen.display_name]
    return Route([chosen, *rest], rating, f"band-{candidates[index]['low']}-{candidates[index]['high']}")
