"""Every outbound HTTP call (upstream models, remote embedders) goes through this package: the one home of the
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

from aivax.outbound.clients import (
    GuardedAsyncBackend,
    GuardedSyncBackend,
    ResponseTooLarge,
    aiter_lines_limited,
    aread_limited,
    new_async_client,
    new_sync_client,
    shared_async_client,
    upstream_timeout,
)
from aivax.outbound.errors import (
    ERROR_BODY_LIMIT,
    RETRYABLE_STATUS,
    aread_capped,
    error_reason,
    host_of,
    is_retryable_status,
    scrub,
    status_summary,
    summarise,
)
from aivax.outbound.policy import (
    METADATA_HOSTS,
    BlockedAddress,
    IPAddress,
    Policy,
    check_address,
    checked_addresses,
    classify,
    embedded_ipv4,
    ip_literal,
    is_blocked,
    resolve,
    validate_url,
)

__all__ = [
    "ERROR_BODY_LIMIT",
    "METADATA_HOSTS",
    "RETRYABLE_STATUS",
    "BlockedAddress",
    "GuardedAsyncBackend",
    "GuardedSyncBackend",
    "IPAddress",
    "Policy",
    "ResponseTooLarge",
    "aiter_lines_limited",
    "aread_capped",
    "aread_limited",
    "check_address",
    "checked_addresses",
    "classify",
    "embedded_ipv4",
    "error_reason",
    "host_of",
    "ip_literal",
    "is_blocked",
    "is_retryable_status",
    "new_async_client",
    "new_sync_client",
    "resolve",
    "scrub",
    "shared_async_client",
    "status_summary",
    "summarise",
    "upstream_timeout",
    "validate_url",
]
