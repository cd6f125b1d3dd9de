"""Who is calling the inference service: built once from the authenticated API key (or the signed-in user of the
playground) and handed down the request path as it is (the meter bills it, the gate checks it)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from quotas.policy import Limits


@dataclass(frozen=True)
class Caller:
    organization_id: int
    key_id: uuid.UUID | None
    allowed_gateway_ids: frozenset[uuid.UUID] = frozenset()
    rate_limits: Limits | None = None  # the key's own; the organization's and its plan's apply too

    def may_use(self, gateway_id: str) -> bool:
        return not self.allowed_gateway_ids or uuid.UUID(gateway_id) in self.allowed_gateway_ids
