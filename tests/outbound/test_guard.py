"""The connect-time guard of aivax.outbound's clients, sync and async, and the remote embedder that uses it."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from aivax import outbound
from aivax.outbound import Policy
from knowledge.embeddings import EmbeddingError, OpenAICompatibleEmbedder


class _Server:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.body: Any = None
        self.headers: dict[str, str] = {}


@pytest.fixture
def server() -> Iterator[tuple[_Server, int]]:
    state = _Server()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            payload = json.loads(self.rfile.read(length) or b"{}")
            state.requests.append({"path": self.path, "json": payload, "headers": dict(self.headers)})
            body = state.body
            if body is None:
                body = {"data": [{"index": i, "embedding": [1.0, 0.0, 0.0, 0.0]} for i in range(len(payload["input"]))]}
            raw = json.dumps(body).encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for key, value in state.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state, int(httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Names whose DNS answer the test sets (and may change between two calls)."""
    answers: dict[str, str] = {}
    real = socket.getaddrinfo

    def fake(host, port, *args, **kwargs):
        if host in answers:
            family = socket.AF_INET6 if ":" in answers[host] else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (answers[host], port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return answers


def _embedder(port: int, host: str = "127.0.0.1", **kwargs: Any) -> OpenAICompatibleEmbedder:
    return OpenAICompatibleEmbedder(base_url=f"http://{host}:{port}/v1", api_key="k", model="m", dimension=4, **kwargs)


# ---- sync client (the remote embedder)


def test_embedder_reaches_loopback_when_allowed(settings, server) -> None:
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    state, port = server
    assert len(_embedder(port).embed(["a", "b"]).vectors) == 2
    assert len(state.requests) == 1


def test_embedder_refuses_loopback_when_not_allowed(settings, server) -> None:
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    state, port = server
    with pytest.raises(EmbeddingError, match="not allowed") as info:
        _embedder(port).embed(["a"])
    assert info.value.retryable is False
    assert state.requests == []


def test_embedder_refuses_a_name_rebound_to_metadata(settings, server, resolver) -> None:
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    state, port = server
    resolver["embed.test"] = "127.0.0.1"
    _embedder(port, "embed.test").embed(["a"])  # saved and used while it pointed at loopback
    resolver["embed.test"] = "169.254.169.254"
    with pytest.raises(EmbeddingError, match="not allowed"):
        _embedder(port, "embed.test").embed(["a"])
    resolver["embed.test"] = "::ffff:169.254.169.254"
    with pytest.raises(EmbeddingError, match="not allowed"):
        _embedder(port, "embed.test").embed(["a"])
    assert len(state.requests) == 1


def test_embedder_does_not_follow_redirects_or_use_env_proxies(settings, server, monkeypatch) -> None:
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    monkeypatch.setenv("HTTP_PROXY", "http://169.254.169.254:3128")
    monkeypatch.setenv("ALL_PROXY", "http://169.254.169.254:3128")
    state, port = server
    assert _embedder(port).embed(["a"]).vectors  # straight to the server, not through the proxy
    state.status, state.body, state.headers = 307, {}, {"Location": f"http://127.0.0.1:{port}/elsewhere"}
    with pytest.raises(EmbeddingError, match="redirect"):
        _embedder(port).embed(["a"])
    assert len(state.requests) == 2


def test_embedder_error_body_is_scrubbed(settings, server) -> None:
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    state, port = server
    key = "plainkey7Q2xZ9"  # no well-known prefix
    state.status = 401
    state.body = {"error": {"message": f"key {key} rejected by http://10.2.3.4:9000/auth on gpu-3.corp.internal"}}
    embedder = OpenAICompatibleEmbedder(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, model="m", dimension=4)
    with pytest.raises(EmbeddingError) as info:
        embedder.embed(["a"])
    message = str(info.value)
    assert "HTTP 401" in message and "rejected" in message
    for leak in (key, "10.2.3.4", "gpu-3", "corp.internal"):
        assert leak not in message


def test_unix_sockets_are_refused() -> None:
    with pytest.raises(outbound.BlockedAddress):
        outbound.GuardedSyncBackend(Policy.PLATFORM).connect_unix_socket("/var/run/docker.sock")


# ---- async client (the chat upstream)


def test_async_client_checks_every_connection(settings, server, resolver) -> None:
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    state, port = server
    resolver["chat.test"] = "127.0.0.1"

    async def go() -> list[str]:
        outcomes = []
        async with outbound.new_async_client(Policy.TENANT) as client:
            for answer in ("127.0.0.1", "169.254.169.254", "fd00:ec2::254", "0.0.0.0"):
                resolver["chat.test"] = answer
                try:
                    # a new connection each time: the server closes after one answer (HTTP/1.0)
                    await client.post(f"http://chat.test:{port}/v1/embeddings", json={"input": ["x"]})
                    outcomes.append("sent")
                except httpx.ConnectError as exc:
                    outcomes.append("blocked" if outbound.is_blocked(exc) else "error")
        return outcomes

    assert asyncio.run(go()) == ["sent", "blocked", "blocked", "blocked"]
    assert len(state.requests) == 1


def test_async_platform_client_allows_loopback_but_never_metadata(settings, server, resolver) -> None:
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    _, port = server
    resolver["model.test"] = "127.0.0.1"
    resolver["meta.test"] = "169.254.169.254"

    async def go() -> None:
        async with outbound.new_async_client(Policy.PLATFORM) as client:
            response = await client.post(f"http://model.test:{port}/v1/embeddings", json={"input": ["x"]})
            assert response.status_code == 200
            with pytest.raises(httpx.ConnectError) as info:
                await client.post(f"http://meta.test:{port}/v1/embeddings", json={"input": ["x"]})
            assert outbound.is_blocked(info.value)

    asyncio.run(go())
