"""The address policy of aivax.outbound, judged when a URL is saved (no network: every host here is a literal or a
name whose resolution the test fixes)."""

from __future__ import annotations

import socket

import pytest

from aivax import outbound
from aivax.errors import InvalidRequest
from aivax.outbound import Policy, validate_url

# Refused in every mode, whatever the operator allows.
NEVER = [
    "http://169.254.169.254/latest/meta-data",
    "http://metadata.google.internal/computeMetadata/v1",
    "http://metadata/computeMetadata/v1",
    "http://METADATA.GOOGLE.INTERNAL./v1",
    "http://[fd00:ec2::254]/latest",
    "http://169.254.10.1/v1",
    "http://[fe80::1]/v1",
    "http://[fc00::5]/v1",
    "http://[fdab:1234::1]/v1",
    "http://0.0.0.0:8000/v1",
    "http://[::]:8000/v1",
    "http://224.0.0.1/v1",
    "http://[ff02::1]/v1",
    "http://240.0.0.1/v1",
    "http://100.100.100.200/latest",
    # IPv4 in other spellings, judged as 169.254.169.254
    "http://2852039166/",
    "http://0xA9FEA9FE/",
    "http://0251.0376.0251.0376/",
    "http://169.254.43518/",
    "http://0xa9.0xfe.0xa9.0xfe/",
    # IPv6 forms that carry it
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[64:ff9b::169.254.169.254]/",
    "http://[2002:a9fe:a9fe::]/",
    "http://[::a9fe:a9fe]/",
    "http://[::ffff:0:a9fe:a9fe]/",
]
LOOPBACK = ["http://127.0.0.1:8000/v1", "http://[::1]:8080/v1", "http://0x7f000001/v1", "http://[::ffff:127.0.0.1]/v1"]
PRIVATE = [
    "http://10.1.2.3/v1",
    "http://192.168.0.10/v1",
    "http://172.16.5.4/v1",
    "http://100.64.0.1/v1",
    "http://[::ffff:10.1.2.3]/v1",
    "http://[64:ff9b::a01:203]/v1",
    "http://[2002:c0a8:1::]/v1",
    "http://167772161/v1",  # 10.0.0.1
]


@pytest.fixture
def strict(settings):
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    settings.OUTBOUND_ALLOWED_PRIVATE_HOSTS = []
    return settings


@pytest.fixture
def permissive(settings):
    """The widest an operator can go."""
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    settings.OUTBOUND_ALLOWED_PRIVATE_HOSTS = ["0.0.0.0/0", "::/0", "metadata.google.internal", "metadata"]
    return settings


@pytest.mark.parametrize("url", NEVER)
@pytest.mark.parametrize("policy", list(Policy))
def test_metadata_link_local_and_unique_local_are_refused_in_every_mode(permissive, url, policy) -> None:
    with pytest.raises(InvalidRequest) as exc:
        validate_url(url, policy=policy)
    assert exc.value.param == "base_url"


@pytest.mark.parametrize("url", LOOPBACK + PRIVATE)
def test_loopback_and_private_are_refused_unless_allowed(strict, url) -> None:
    with pytest.raises(InvalidRequest, match="not allowed"):
        validate_url(url)


@pytest.mark.parametrize("url", LOOPBACK)
def test_loopback_when_the_operator_allows_it(strict, url) -> None:
    strict.OUTBOUND_ALLOW_LOOPBACK = True
    validate_url(url)


@pytest.mark.parametrize("url", PRIVATE)
def test_loopback_allowed_does_not_open_private_networks(strict, url) -> None:
    strict.OUTBOUND_ALLOW_LOOPBACK = True
    with pytest.raises(InvalidRequest):
        validate_url(url)


def test_operator_allow_list_of_hosts_and_cidrs(strict, monkeypatch) -> None:
    strict.OUTBOUND_ALLOWED_PRIVATE_HOSTS = ["10.0.0.0/8", "models.corp"]
    real = socket.getaddrinfo

    def fake(host, port, *args, **kwargs):
        if host in {"models.corp", "other.corp"}:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.168.7.7", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    validate_url("http://10.20.30.40:8000/v1")
    validate_url("http://models.corp/v1")
    for url in ("http://192.168.1.1/v1", "http://other.corp/v1", "http://127.0.0.1/v1"):
        with pytest.raises(InvalidRequest):
            validate_url(url)


@pytest.mark.parametrize("url", LOOPBACK + PRIVATE)
def test_platform_urls_may_be_private(strict, url) -> None:
    validate_url(url, policy=Policy.PLATFORM)  # the catalog's local model lives on loopback


def test_every_resolved_address_is_checked(strict, monkeypatch) -> None:
    strict.OUTBOUND_ALLOW_LOOPBACK = True

    def fake(host, port, *args, **kwargs):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fe80::1%eth0", port, 0, 2)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    with pytest.raises(InvalidRequest):
        validate_url("http://two-faced.example/v1")


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/v1", "file:///etc/passwd", "http://user:pw@127.0.0.1/v1", "nonsense", "", "http://[::1"],
)
def test_only_plain_http_urls(settings, url) -> None:
    with pytest.raises(InvalidRequest):
        validate_url(url)


def test_a_tenant_host_that_does_not_resolve_is_refused_a_platform_one_is_not(settings) -> None:
    with pytest.raises(InvalidRequest, match="Cannot resolve"):
        validate_url("http://no-such-host.invalid/v1", param="embeddingBaseUrl")
    validate_url("https://no-such-host.invalid/v1", policy=Policy.PLATFORM)


def test_the_error_names_the_parameter(strict) -> None:
    with pytest.raises(InvalidRequest) as exc:
        validate_url("http://169.254.169.254/", param="embeddingBaseUrl")
    assert exc.value.param == "embeddingBaseUrl"


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("8.8.8.8", "public"),
        ("2606:4700::1111", "public"),
        ("::ffff:8.8.8.8", "public"),
        ("64:ff9b::808:808", "public"),
        ("127.0.0.2", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("168.63.129.16", "never"),
        ("2001:0:4136:e378:8000:63bf:5601:56fe", "never"),  # Teredo, client 169.254.169.1
    ],
)
def test_classify(address: str, kind: str) -> None:
    assert outbound.classify(outbound.ip_literal(address)) == kind  # type: ignore[arg-type]
