"""The edges of the ASGI application: oversized bodies refused before they are read, ALLOWED_HOSTS and security
headers on /api/, and JSON error objects (never Django's HTML pages) for unknown API paths and wrong methods."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest
from django.test import override_settings


def _error(response: httpx.Response) -> dict:
    assert response.headers["content-type"].startswith("application/json"), response.text[:200]
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def _raw_request(url: str, head: bytes) -> bytes:
    """Send only a request head (no body) and read the answer: the server must not wait for the body."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
            if b"\r\n\r\n" in b"".join(chunks) and b"}}" in b"".join(chunks):
                break
        return b"".join(chunks)


def test_a_declared_oversized_body_is_refused_before_it_is_sent(live_asgi):
    head = (
        b"POST /api/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 10000000000\r\n\r\n"
    )
    answer = _raw_request(live_asgi.url, head)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"request_too_large"' in answer


def test_an_oversized_upload_is_refused_before_authentication(live_asgi):
    head = (
        b"POST /api/v1/collections/x/files HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 10000000000\r\n\r\n"
    )
    assert _raw_request(live_asgi.url, head).startswith(b"HTTP/1.1 413")


def test_a_streamed_body_is_cut_off_at_the_limit(live_asgi):
    def chunks() -> Iterator[bytes]:
        for _ in range(64):
            yield b" " * 65536  # 4 MiB in all, no Content-Length (chunked)

    with override_settings(MAX_REQUEST_BODY_BYTES=1024 * 1024):
        response = httpx.post(f"{live_asgi.url}/api/v1/chat/completions", content=chunks(), timeout=20)
    assert response.status_code == 413
    assert _error(response)["code"] == "request_too_large"


def test_a_body_under_the_limit_still_reaches_the_api(live_asgi):
    with override_settings(MAX_REQUEST_BODY_BYTES=1024 * 1024):
        response = httpx.post(f"{live_asgi.url}/api/v1/chat/completions", content=b"{}", timeout=20)
    assert response.status_code == 401  # read in full, then refused for the missing key


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/no-such-endpoint", 404),
        ("POST", "/api/v1/", 404),
        ("GET", "/api/v2/models", 404),
        ("GET", "/api/v1/chat/completions", 405),
        ("DELETE", "/api/v1/models", 405),
    ],
)
def test_unknown_paths_and_wrong_methods_answer_json(live_asgi, method, path, status):
    response = httpx.request(method, f"{live_asgi.url}{path}", timeout=20)
    assert response.status_code == status
    assert _error(response)["code"] in ("unknown_url", "method_not_allowed")


def test_api_requests_honour_allowed_hosts(live_asgi):
    response = httpx.get(f"{live_asgi.url}/api/v1/models", headers={"Host": "evil.example"}, timeout=20)
    assert response.status_code == 400
    assert _error(response)["code"] == "invalid_host"


def test_api_responses_carry_the_security_headers(live_asgi):
    response = httpx.get(f"{live_asgi.url}/api/v1/models", timeout=20)
    assert response.status_code == 401
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"


def test_a_malformed_json_body_is_an_error_object(live_asgi):
    response = httpx.post(
        f"{live_asgi.url}/api/v1/chat/completions", content=json.dumps([1]).encode() + b"{", timeout=20
    )
    assert response.status_code in (400, 401)
    _error(response)
