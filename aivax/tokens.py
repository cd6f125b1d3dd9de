"""Token counting with a real BPE tokenizer (o200k_base, bundled by bpe-openai: no download at run time).

Used where an upstream does not report usage (client disconnects, silent upstreams) and for estimates before a
call (balance reservations, context limits). Counts for non-OpenAI models are estimates and are marked as such.

Any text can be counted: special-token text such as "<|endoftext|>" counts as ordinary text, and long text is
encoded in pieces (the encoder refuses 1,000,000 characters or 200,000 tokens in one call). The encoder holds the
GIL for the length of one call: pieces also keep each hold short, so counting in a worker thread
(asyncio.to_thread) lets the event loop run between pieces.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

# OpenAI's accounting for chat: each message costs its content plus ~3 framing tokens; the reply is primed with 3.
_PER_MESSAGE = 3
_REPLY_PRIMING = 3


@lru_cache(maxsize=1)
def _encoding() -> Any:
    import bpe_openai

    return bpe_openai.get_encoding("o200k_base")


# ~1-2 ms of encoding per piece; a piece boundary is moved back to whitespace so words are not split.
PIECE_CHARS = 16_384


def count_text(text: str) -> int:
    if not text:
        return 0
    encode = _encoding().encode_ordinary
    if len(text) <= PIECE_CHARS:
        return len(encode(text))
    total = 0
    start = 0
    while start < len(text):
        end = min(start + PIECE_CHARS, len(text))
        if end < len(text):
            space = text.rfind(" ", start + PIECE_CHARS // 2, end)
            end = space if space > start else end
        total += len(encode(text[start:end]))
        start = end
    return total


def message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        parts = [str(p.get("text") or "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        content = "\n".join(parts)
    text = content or ""
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            text = f"{text}{function.get('name') or ''}{function.get('arguments') or ''}"
    return str(text)


def count_message(message: dict[str, Any]) -> int:
    """One message's share of a prompt (its text plus the per-message framing)."""
    return count_text(message_text(message)) + _PER_MESSAGE


def count_messages(messages: list[dict[str, Any]]) -> int:
    return sum(count_message(m) for m in messages) + _REPLY_PRIMING


def conversation_total(per_message: list[int]) -> int:
    """The prompt size of a conversation from its messages' counts (see count_message)."""
    return sum(per_message) + _REPLY_PRIMING
