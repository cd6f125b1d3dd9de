"""What a public key (pk-aivax-...) may send: `model` (one of its gateways), `messages` and `stream`.

Everything else (sampling, tools, response format, max tokens, metadata, ...) is the gateway's own setting; a
request that names any other field is refused with a 400 naming it, rather than silently changed, so a page's
developer sees at once that the field has no effect.
"""

from __future__ import annotations

import json

from aivax.errors import InvalidRequest

PUBLIC_FIELDS = frozenset({"model", "messages", "stream"})


def public_request_body(raw: bytes) -> bytes:
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        return raw  # the chat parser answers malformed JSON in its usual words
    if isinstance(body, dict):
        extra = sorted(set(body) - PUBLIC_FIELDS)
        if extra:
            raise InvalidRequest(
                f"Public keys accept only 'model', 'messages' and 'stream'; '{extra[0]}' is set by the gateway.",
                param=extra[0],
                code="unsupported_parameter",
            )
    return raw
