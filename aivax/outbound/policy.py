"""Which addresses an outbound call may reach, judged when a URL is saved and on every connection."""

from __future__ import annotations

import enum
import ipaddress
import re
import socket
from typing import Literal
from urllib.parse import urlsplit

import httpcore
from django.conf import settings

from aivax.errors import InvalidRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AddressKind = Literal["never", "loopback", "private", "public"]


class Policy(enum.Enum):
    TENANT = "tenant"  # a tenant's own endpoint or embedding URL: the full policy
    PLATFORM = "platform"  # a catalog model set up by platform staff: only the "never" list


class BlockedAddress(httpcore.ConnectError):
    """The host resolves to an address this call may not reach."""


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


def classify(address: IPAddress) -> AddressKind:
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
    except (OSError, UnicodeError, ValueError) as exc:
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
            raise InvalidRequest(f"Cannot resolve the host {host[:100]!r}.", param=param) from exc


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
