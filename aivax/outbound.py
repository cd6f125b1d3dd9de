"""Every outbound HTTP call (upstream models, remote embedders) goes through this module: the one home of the
address policy, the connect-time guard, the hardened clients, and upstream error summarising.

Address policy (the same in every settings flavour; only the operator's two settings widen it):

* **Never**: metadata services (169.254.169.254, fd00:ec2::254, metadata.google.internal...), link-local
  (169.254/16, fe80::/10), unique-local IPv6 (fc00::/7), unspecified (0.0.0.0/8, ::), multicast, reserved.
* **Loopback** (127/8, ::1): only with ``OUTBOUND_ALLOW_LOOPBACK`` (dev and test turn it on) or when listed in
  ``OUTBOUND_ALLOWED_PRIVATE_HOSTS``.
* **Private** (10/8, 172.16/12, 192.168/16, 100.64/10, ...): only hosts or CIDRs listed in
  ``OUTBOUND_ALLOWED_PRIVATE_HOSTS``.
* Everything else (global unicast) is allowed.

IPv4 written as one number, in octal or hex (``2852039166``, ``0xA9FEA9FE``, ``0251.0376.0251.0376``), and IPv6
addresses that carry an IPv4 one (``::ffff:a.b.c.d``, ``64:ff9b::/96``, 6to4 ``2002::/16``, Teredo, IPv4-compatible
``::a.b.c.d``) are judged by that IPv4 address. Catalog models are configured by platform staff
(``Policy.PLATFORM``): for them only the "never" list applies (the local model lives on loopback).

A URL is checked when it is saved (``validate_url``) and again on every new connection (``Guarded*Backend``):
the host is resolved by us, every address it resolves to is checked, and we connect to a checked address, so a
DNS answer that changes after the save (rebinding) does not get through.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import json
import logging
import re
import socket
import weakref
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
from django.conf import settings

from aivax.errors import InvalidRequest

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Policy(enum.Enum):
    TENANT = "tenant"  # a tenant's own endpoint or embedding URL: the full policy
    PLATFORM = "platform"  # a catalog model set up by platform staff: only the "never" list


class BlockedAddress(httpcore.ConnectError):
    """The host resolves to an address this call may not reach."""


# --------------------------------------------------------------------------------------------------------------
# Address policy

METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.internal",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.platformequinix.com",
    }
)
# Metadata endpoints outside the link-local ranges (which are refused anyway): Alibaba (in 100.64/10), Azure's
# wire server, Oracle's, and AWS's IPv6 one (inside fc00::/7, listed for the record).
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("100.100.100.200", "168.63.129.16", "192.0.0.192", "fd00:ec2::254")
)
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_LEGACY_IPV4 = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$", re.IGNORECASE)


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, translated, NAT64, 6to4, Teredo, compatible)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    value = int(address)
    if any(address in network for network in _NAT64) or value >> 32 == 0xFFFF0000:  # ::ffff:0:a.b.c.d
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if value >> 32 == 0 and value > 1:  # IPv4-compatible ::a.b.c.d (not :: or ::1)
        return ipaddress.IPv4Address(value)
    return None


def classify(address: IPAddress) -> str:
    """One of "never", "loopback", "private", "public"."""
    inner = embedded_ipv4(address)
    if inner is not None:
        return classify(inner)
    if address.is_loopback:  # before "reserved": ::1 lies in the reserved ::/8
        return "loopback"
    if (
        address in _METADATA_ADDRESSES
        or address.is_unspecified
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or (isinstance(address, ipaddress.IPv4Address) and address in _THIS_NETWORK)
        or (isinstance(address, ipaddress.IPv6Address) and (address in _UNIQUE_LOCAL or address.is_site_local))
    ):
        return "never"
    if address.is_global:
        return "public"
    return "private"


def ip_literal(host: str) -> IPAddress | None:
    """``host`` as an IP address if it is one, in any form a resolver accepts (``0xA9FEA9FE``, ``2852039166``)."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if _LEGACY_IPV4.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _listed(host: str, address: IPAddress) -> bool:
    for entry in settings.OUTBOUND_ALLOWED_PRIVATE_HOSTS:
        if entry.lower() == host:
            return True
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def check_address(host: str, address: str | IPAddress, *, policy: Policy) -> None:
    """Raise BlockedAddress unless ``host`` (as named in the URL) may be reached at ``address``."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    host = host.lower().rstrip(".")
    kind = classify(ip)
    if kind == "public":
        return
    if kind != "never":
        if policy is Policy.PLATFORM or _listed(host, ip):
            return
        if kind == "loopback" and settings.OUTBOUND_ALLOW_LOOPBACK:
            return
    raise BlockedAddress(f"{host} is a {kind} address, which is not allowed")


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order of preference."""
    literal = ip_literal(host)
    if literal is not None:
        return [str(literal)]
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in infos))


def checked_addresses(host: str, port: int, *, policy: Policy) -> list[str]:
    if host.lower().rstrip(".") in METADATA_HOSTS:
        raise BlockedAddress(f"{host} is a metadata service")
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError) as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}") from exc
    for address in addresses:  # every one: a resolver may hand out a private one next time
        check_address(host, address, policy=policy)
    return addresses


def validate_url(url: str, *, param: str = "base_url", policy: Policy = Policy.TENANT) -> None:
    """Check a URL when it is saved: http(s), a host, no credentials, and every address it resolves to allowed.
    A platform URL that does not resolve yet is accepted (the connect-time guard still applies)."""
    try:
        parts = urlsplit(url or "")
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise InvalidRequest("The URL is not valid.", param=param) from exc
    if parts.scheme not in {"http", "https"} or not host:
        raise InvalidRequest("The URL must be an http(s) URL with a host.", param=param)
    if parts.username or parts.password:
        raise InvalidRequest("Put credentials in the API key field, not in the URL.", param=param)
    try:
        checked_addresses(host, port or (443 if parts.scheme == "https" else 80), policy=policy)
    except BlockedAddress as exc:
        raise InvalidRequest(
            "The URL points at a private, loopback, link-local or metadata address, which is not allowed.",
            param=param,
        ) from exc
    except httpcore.ConnectError as exc:
        if policy is Policy.TENANT:
            raise InvalidRequest(f"Cannot resolve the host {host!r}.", param=param) from exc


def is_blocked(exc: BaseException) -> bool:
    """Whether an httpx error was our guard refusing the address (httpx wraps httpcore's exception)."""
    seen: BaseException | None = exc
    for _ in range(8):  # a short chain; never loop on a cycle
        if seen is None:
            return False
        if isinstance(seen, BlockedAddress):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


# --------------------------------------------------------------------------------------------------------------
# Connect-time guard and hardened clients


class GuardedAsyncBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself (in a thread), checks every address, then connects to a checked one."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        lookup = asyncio.to_thread(checked_addresses, host, port, policy=self.policy)
        try:
            addresses = await asyncio.wait_for(lookup, timeout)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} took too long") from exc
        error: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedAddress("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedSyncBackend(httpcore.SyncBackend):
    """The same guard for sync clients (the remote embedder runs in Celery workers and sync views)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        error: httpcore.ConnectError | None = None
        for address in checked_addresses(host, port, policy=self.policy):
            try:
                return super().connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:
                error = exc
        assert error is not None
        raise error

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        raise BlockedAddress("unix sockets are not allowed")


def upstream_timeout() -> httpx.Timeout:
    connect = settings.UPSTREAM_CONNECT_TIMEOUT
    return httpx.Timeout(connect=connect, read=settings.UPSTREAM_READ_TIMEOUT, write=connect, pool=connect)


def _limits() -> httpx.Limits:
    return httpx.Limits(
        max_connections=settings.OUTBOUND_MAX_CONNECTIONS,
        max_keepalive_connections=settings.OUTBOUND_MAX_KEEPALIVE_CONNECTIONS,
        keepalive_expiry=30,
    )


def new_async_client(policy: Policy) -> httpx.AsyncClient:
    """A hardened client: guarded connections, explicit timeouts, no redirects (a redirect would resend the key
    wherever it points), no proxies from the environment (they would bypass the guard)."""
    transport = httpx.AsyncHTTPTransport(limits=_limits(), retries=0)
    transport._pool._network_backend = GuardedAsyncBackend(policy)  # httpcore's documented extension point
    return httpx.AsyncClient(transport=transport, timeout=upstream_timeout(), follow_redirects=False, trust_env=False)


def new_sync_client(policy: Policy, *, timeout: float = 60.0, connect_timeout: float | None = None) -> httpx.Client:
    connect = settings.UPSTREAM_CONNECT_TIMEOUT if connect_timeout is None else connect_timeout
    transport = httpx.HTTPTransport(limits=_limits(), retries=0)
    transport._pool._network_backend = GuardedSyncBackend(policy)
    return httpx.Client(
        transport=transport,
        timeout=httpx.Timeout(timeout, connect=connect, pool=connect),
        follow_redirects=False,
        trust_env=False,
    )


_shared: dict[Policy, weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]] = {
    policy: weakref.WeakKeyDictionary() for policy in Policy
}


def shared_async_client(policy: Policy) -> httpx.AsyncClient:
    """The pooled client for this event loop and policy (a client's pool belongs to one loop)."""
    loop = asyncio.get_running_loop()
    client = _shared[policy].get(loop)
    if client is None:
        client = _shared[policy][loop] = new_async_client(policy)
    return client


# --------------------------------------------------------------------------------------------------------------
# Upstream errors

# Worth another try later: timeouts, conflicts, rate limits and transient server errors. Other 4xx are final.
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
ERROR_BODY_LIMIT = 64 * 1024  # bytes of an error body we read at most


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUS


_REDACTED = "[redacted]"
_SCRUBBERS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(?i)\b[a-z][a-z0-9+.\-]*://[^\s\"'<>()]+"), "[url]"),
    (re.compile(r"(?i)\b(bearer|basic|token)\s+[^\s\"',;()]+"), r"\1 " + _REDACTED),
    (
        re.compile(
            r"(?i)\b((?:x-)?api[_-]?key|access[_-]?token|secret|password|authorization)(\"?'?\s*[:=]\s*\"?'?)"
            r"[^\s\"',;]+"
        ),
        r"\1\2" + _REDACTED,
    ),
    (re.compile(r"\b(?:sk|pk|rk|gsk|xai)[-_][A-Za-z0-9_\-*.]{6,}"), _REDACTED),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), _REDACTED),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.?[A-Za-z0-9_\-]*"), _REDACTED),  # JWTs
    (re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?![\w.])"), "[address]"),
    (
        re.compile(r"(?i)\b(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\b(?::\d{1,5})?|\blocalhost\b"),
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


def scrub(text: str, *, secrets: Iterable[str] = (), hosts: Iterable[str] = ()) -> str:
    """``text`` without the given secrets (whatever their shape, also partly masked echoes such as
    ``sk-abc1****wxyz``), anything key-shaped, URLs, IP addresses and host names; on one line."""
    text = " ".join(str(text)[:4000].split())
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, _REDACTED)
        if len(secret) >= 12:  # an upstream that masks the middle still echoes both ends
            head, tail = re.escape(secret[:6]), re.escape(secret[-4:])
            text = re.sub(rf"\S*(?:{head}\S*|\S*\*{{3,}}\S*{tail})", _REDACTED, text)
    for host in hosts:
        if host:
            text = re.sub(re.escape(host), "[host]", text, flags=re.IGNORECASE)
    for pattern, replacement in _SCRUBBERS:
        text = pattern.sub(replacement, text)
    text = _IPV6_CANDIDATE.sub(_scrub_ipv6, text)
    text = _LONG_RUN.sub(_scrub_long_run, text)
    return re.sub(r"\S*\*{4,}\S*", _REDACTED, text)  # masked values of any kind


def error_reason(raw: bytes | str | dict[str, Any] | None) -> str:
    """The human part of an error body or event: ``error.message``, ``error`` as text, ``detail`` or
    ``message``; plain text unless it is HTML. Unscrubbed: pass it through ``scrub``."""
    data: Any = raw
    if isinstance(raw, bytes | str):
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        try:
            data = json.loads(text)
        except ValueError:
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
