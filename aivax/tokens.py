"""Token counting with a real BPE tokenizer (o200k_base, bundled by bpe-openai: no download at run time).

Used where an upstream does not report usage (client disconnects, silent upstreams) and for estimates before a
call (balance reservations, context limits). Counts for non-OpenAI models are estimates and are marked as such.
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


def count_text(text: str) -> int:
    if not text:
        return 0
    return len(_encoding().encode(text))


def message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        content = "\n".join(parts)
    text = content or ""
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        text += f"{function.get('name', '')}{function.get('arguments', '')}"
    return str(text)


def count_messages(messages: list[dict[str, Any]]) -> int:
    return sum(count_text(message_text(m)) + _PER_MESSAGE for m in messages) + _REPLY_PRIMING
