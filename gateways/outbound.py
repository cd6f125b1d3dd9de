"""Outbound safety for tenants' own endpoints: http(s) only, no redirects, and (in production) no private,
loopback, link-local or metadata addresses unless an operator allows them. Checked when a URL is saved and again
on the address actually connected to, so DNS rebinding between the two checks does not help."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlparse

import httpcore
from django.conf import settings

from aivax.errors import InvalidRequest

_METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data"}


class BlockedAddress(httpcore.ConnectError):
    """The resolved address is not one a tenant's endpoint may reach."""


def _allowed_by_operator(host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    for entry in settings.OUTBOUND_ALLOWED_PRIVATE_HOSTS:
        if entry == host:
            return True
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def address_is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def check_address(host: str, address: str) -> None:
    if settings.OUTBOUND_ALLOW_PRIVATE:
        return
    ip = ipaddress.ip_address(address)
    if not address_is_public(ip) and not _allowed_by_operator(host, ip):
        raise BlockedAddress(f"{host} resolves to a non-public address")


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def validate_base_url(url: str) -> None:
    """Called when a tenant saves an endpoint."""
    parsed = urlparse(url or "")
    if parsed.scheme not in {"http", "https"} or not parsed.hostname:
        raise InvalidRequest("The base URL must be an http(s) URL with a host.", param="base_url")
    if parsed.username or parsed.password:
        raise InvalidRequest("Put credentials in the API key field, not in the URL.", param="base_url")
    if settings.OUTBOUND_ALLOW_PRIVATE:
        return
    if parsed.hostname.lower() in _METADATA_HOSTS:
        raise InvalidRequest("That host is not allowed.", param="base_url")
    try:
        addresses = _resolve(parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80))
    except OSError as exc:
        raise InvalidRequest(f"Cannot resolve host '{parsed.hostname}'.", param="base_url") from exc
    try:
        for address in addresses:
            check_address(parsed.hostname, address)
    except BlockedAddress as exc:
        raise InvalidRequest(
            "The base URL resolves to a private or internal address, which is not allowed.", param="base_url"
        ) from exc


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself, checks every address, then connects to a checked address."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        import anyio

        try:
            addresses = await anyio.to_thread.run_sync(_resolve, host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}") from exc
        for address in addresses:
            check_address(host, address)
        return await self._inner.connect_tcp(
            addresses[0], port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedAddress("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
