"""Upstream error text: summarised to a short reason and scrubbed of secrets and internals (pure functions)."""

from __future__ import annotations

import pytest

from aivax import outbound
from aivax.outbound import error_reason, scrub, summarise


@pytest.mark.parametrize(
    ("text", "secret", "leak"),
    [
        ("Incorrect API key provided: plainKey7Q2xZ9abc.", "plainKey7Q2xZ9abc", "plainKey7Q2xZ9abc"),
        ("Incorrect API key provided: sk-abc1****************wxyz", "sk-abc1234567890wxyz", "wxyz"),
        ("key myse**********ue99 is invalid", "mysecretkeyvalue99", "ue99"),
        ("auth failed for abcd1234", "abcd1234", "abcd1234"),
    ],
)
def test_the_configured_key_whatever_its_shape(text: str, secret: str, leak: str) -> None:
    clean = scrub(text, secrets=[secret])
    assert leak not in clean and "[redacted]" in clean


@pytest.mark.parametrize(
    "secret",
    [
        "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t",
        "Bearer abc.def",
        "api_key=hunter2hunter2",
        '"x-api-key": "s3cr3tvalue"',
        "password: opensesame",
        "AKIAIOSFODNN7EXAMPLE",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
        "0123456789abcdef0123456789abcdef",
        "Q2hhbmdlTWUxMjM0NTY3ODkwYWJjZGVm",
        "gsk_4f8Kd93JfLq0Zp2mVn7RtY5w",
    ],
)
def test_anything_key_shaped(secret: str) -> None:
    clean = scrub(f"rejected: {secret} (see docs)")
    value = secret.split()[-1].split("=")[-1].strip('"')
    assert value not in clean
    assert clean.startswith("rejected:") and clean.endswith("(see docs)")


@pytest.mark.parametrize(
    "internal",
    [
        "http://10.0.0.5:8000/v1/chat",
        "gpu-node-7.internal.example",
        "vllm.default.svc.cluster.local:8000",
        "10.9.8.7",
        "192.168.1.20:11434",
        "fd00:ec2::254",
        "[fe80::1%eth0]:8080",
        "localhost",
    ],
)
def test_internal_hosts_urls_and_addresses(internal: str) -> None:
    clean = scrub(f"upstream {internal} is down")
    assert internal not in clean
    for part in internal.replace("/", " ").replace(":", " ").split():
        if len(part) > 4 and not part.isdigit():
            assert part not in clean
    assert clean.startswith("upstream ") and clean.endswith(" is down")


def test_named_hosts_without_dots() -> None:
    assert "vllm-0" not in scrub("vllm-0 refused the connection", hosts=["vllm-0"])


def test_ordinary_words_survive() -> None:
    text = "The model Llama-3.1-70B-Instruct does not support tools; max_tokens must be <= 4096 at 10:30:00."
    assert scrub(text) == text


def test_summary_is_one_short_line() -> None:
    summary = summarise("line one\n\nline two " + "x " * 500, what="The upstream model returned HTTP 400")
    assert "\n" not in summary and len(summary) <= 40 + 200
    assert summary.startswith("The upstream model returned HTTP 400: line one line two")


def test_a_platform_reason_is_logged_not_returned(caplog) -> None:
    with caplog.at_level("WARNING", logger="aivax.outbound"):
        assert summarise("quota exceeded for sk-platform-secret-123", what="X", verbatim=False) == "X."
    assert "quota exceeded" in caplog.text and "sk-platform-secret-123" not in caplog.text


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"error": {"message": "bad model", "type": "invalid"}}', "bad model"),
        (b'{"error": "plain string"}', "plain string"),
        (b'{"detail": "not found"}', "not found"),
        (b'{"error": {"type": "overloaded"}}', "overloaded"),
        (b"<html><body>502 Bad Gateway at nginx/1.2</body></html>", ""),
        (b"upstream timed out", "upstream timed out"),
        (b"\xff\xfe garbage", "\ufffd\ufffd garbage"),
        ({"error": {"message": "from an SSE event"}}, "from an SSE event"),
    ],
)
def test_error_reason(raw: bytes, reason: str) -> None:
    assert error_reason(raw) == reason


@pytest.mark.parametrize(("status", "retry"), [(408, True), (429, True), (500, True), (503, True), (400, False)])
def test_retryable_statuses(status: int, retry: bool) -> None:
    assert outbound.is_retryable_status(status) is retry
    assert outbound.is_retryable_status(401) is False and outbound.is_retryable_status(501) is False


@pytest.mark.parametrize("unit", ["a:", "1.", "a-", "a.", "sk-", "eyJ-", "ab.", "::ffff:", "x", "****", "http://"])
def test_scrubbing_a_crafted_body_stays_fast(unit: str) -> None:
    """Every pattern is linear: a hostile upstream cannot stall a worker with its error text."""
    import time

    text = unit * 50_000
    started = time.perf_counter()
    scrub(text, secrets=["abcdefghijklmnop"], hosts=["h"])
    assert time.perf_counter() - started < 0.5  # quadratic patterns took tens of seconds on such input


def test_deeply_nested_error_bodies_are_not_a_crash() -> None:
    assert isinstance(error_reason(b"[" * 100_000), str)
    assert error_reason(b'{"error": ' * 50_000) is not None
