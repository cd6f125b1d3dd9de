"""Upstream errors: retryable statuses, and summaries that carry no secret and no internal address."""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpx

logger = logging.getLogger("aivax.outbound")

# Worth another try later: timeouts, conflicts, rate limits and transient server errors. Other 4xx are final.
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
ERROR_BODY_LIMIT = 64 * 1024  # bytes of an error body we read at most
SCRUB_INPUT_LIMIT = 1000  # characters of a reason we scrub (summaries keep 200)


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUS


_REDACTED = "[redacted]"
# Every pattern can only start where a token starts (a look-behind), and its repetitions are bounded or atomic, so
# scrubbing is linear in the text: an upstream cannot make us spin with a crafted error body.
_SCRUBBERS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(?i)(?<![\w+.\-])[a-z][a-z0-9+.\-]{0,15}://[^\s\"'<>()]+"), "[url]"),
    (re.compile(r"(?i)\b(bearer|basic|token)\s+[^\s\"',;()]+"), r"\1 " + _REDACTED),
    (
        re.compile(
            r"(?i)\b((?:x-)?api[_-]?key|access[_-]?token|secret|password|authorization)(\"?'?\s*[:=]\s*\"?'?)"
            r"[^\s\"',;]+"
        ),
        r"\1\2" + _REDACTED,
    ),
    (re.compile(r"(?<![\w\-])(?:sk|pk|rk|gsk|xai)[-_][A-Za-z0-9_\-*.]{6,}"), _REDACTED),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), _REDACTED),
    (re.compile(r"(?<![\w\-])eyJ[A-Za-z0-9_\-]++\.[A-Za-z0-9_\-]++\.?[A-Za-z0-9_\-]*"), _REDACTED),  # JWTs
    (re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?![\w.])"), "[address]"),
    (
        re.compile(
            r"(?i)(?<![\w.\-])(?>[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\b(?::\d{1,5})?|\blocalhost\b"
        ),
        "[host]",
    ),
]
_IPV6_CANDIDATE = re.compile(r"\[?(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:%\w+)?\]?(?::\d{1,5})?")
_LONG_RUN = re.compile(r"[A-Za-z0-9+/_\-=]{20,}")


def _scrub_ipv6(match: re.Match[str]) -> str:
    text = match.group(0)
    candidate = text.split("]", 1)[0].strip("[").split("%", 1)[0]
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return text
    return "[address]"


def _scrub_long_run(match: re.Match[str]) -> str:
    """Random-looking runs (keys, tokens, hashes): letters and digits mixed, or 32+ hex digits."""
    run = match.group(0)
    core = re.sub(r"[^A-Za-z0-9]", "", run)
    longest_alnum = max((len(part) for part in re.split(r"[^A-Za-z0-9]", run)), default=0)
    mixed = any(c.isdigit() for c in core) and any(c.isalpha() for c in core)
    if (mixed and longest_alnum >= 16) or re.fullmatch(r"[0-9a-fA-F]{32,}", run):
        return _REDACTED
    return run


def _token_reveals(token: str, secrets: list[str]) -> bool:
    """A masked value (``abc****xyz``), or a partial echo of a secret: an upstream that masks the middle of a
    key still shows both ends."""
    if "****" in token:
        return True
    core = token.strip(".,;:!?()[]{}'\"")
    for secret in secrets:
        if len(secret) >= 12 and (secret[:6] in token or ("***" in token and core.endswith(secret[-4:]))):
            return True
    return False


def scrub(text: str, *, secrets: Iterable[str] = (), hosts: Iterable[str] = ()) -> str:
    """``text`` without the given secrets (whatever their shape, also partly masked echoes such as
    ``sk-abc1****wxyz``), anything key-shaped, URLs, IP addresses and host names; on one line, at most
    SCRUB_INPUT_LIMIT characters (cut at a space, so no half secret survives the cut)."""
    text = " ".join(str(text)[: 2 * SCRUB_INPUT_LIMIT].split())
    if len(text) > SCRUB_INPUT_LIMIT:
        text = text[:SCRUB_INPUT_LIMIT].rsplit(" ", 1)[0] + " ..."
    known = sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True)
    for secret in known:
        text = text.replace(secret, _REDACTED)
    for host in hosts:
        if host:
            text = re.sub(re.escape(host), "[host]", text, flags=re.IGNORECASE)
    for pattern, replacement in _SCRUBBERS:
        text = pattern.sub(replacement, text)
    text = _IPV6_CANDIDATE.sub(_scrub_ipv6, text)
    text = _LONG_RUN.sub(_scrub_long_run, text)
    return " ".join(_REDACTED if _token_reveals(token, known) else token for token in text.split(" "))


def error_reason(raw: bytes | str | dict[str, Any] | None) -> str:
    """The human part of an error body or event: ``error.message``, ``error`` as text, ``detail`` or
    ``message``; plain text unless it is HTML. Unscrubbed: pass it through ``scrub``."""
    data: Any = raw
    if isinstance(raw, bytes | str):
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):  # deeply nested JSON is not a reason
            return "" if "<" in text else text
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            for key in ("message", "detail", "type", "code"):
                if isinstance(error.get(key), str | list) and error.get(key):
                    return str(error[key])
            return ""
        return str(error) if error else ""
    return str(data) if isinstance(data, str) else ""


def summarise(
    reason: str,
    *,
    what: str,
    secrets: Iterable[str] = (),
    hosts: Iterable[str] = (),
    verbatim: bool = True,
    limit: int = 200,
) -> str:
    """``what`` followed by a short, scrubbed reason. ``verbatim=False`` (a platform provider's words, which are
    not the tenant's business) logs the reason and returns ``what`` alone."""
    clean = scrub(reason, secrets=secrets, hosts=hosts)
    if len(clean) > limit:
        clean = clean[: limit - 3].rstrip() + "..."
    if not verbatim:
        if clean:
            logger.warning("%s: %s", what, clean)
        return f"{what}."
    return f"{what}: {clean}" if clean else f"{what}."


def status_summary(status: int, *, verbatim: bool) -> str:
    """The first half of an error summary: the exact status for a tenant's own endpoint, the class otherwise."""
    return f"HTTP {status}" if verbatim else f"HTTP {status // 100}xx"


async def aread_capped(response: httpx.Response, limit: int = ERROR_BODY_LIMIT) -> bytes:
    """At most ``limit`` bytes of a (streamed) response body; closes it."""
    raw = b""
    try:
        async for chunk in response.aiter_bytes():
            raw += chunk
            if len(raw) >= limit:
                break
    except httpx.HTTPError:
        pass
    finally:
        await response.aclose()
    return raw[:limit]


def host_of(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""
