"""A complete aivax stack of real processes for fault injection: its own embedded PostgreSQL, a private
redis-server, the stub upstream (a thread of this process), a web process (uvicorn) and, on demand, a Celery worker.

Each part can be stopped for real (pg_ctl stop, SIGTERM/SIGKILL) and started again where it was, while `Traffic`
keeps requests (streams included) flowing and records every outcome.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from aivax import embedded
from aivax.testing.stub_upstream import StubServer

REPO = Path(__file__).resolve().parents[2]

# Short timeouts so that each fault shows its designed behaviour within seconds (CI-sized).
FAULT_SETTINGS = {
    "DJANGO_SETTINGS_MODULE": "aivax.settings.test",
    "DB_POOL_TIMEOUT": "1",
    "BILLING_SETTLE_WAIT_SECONDS": "2",
    "DB_POOL_RECONNECT_SECONDS": "2",
    "DB_CONNECT_TIMEOUT": "1",
    "DB_POOL_MAX_SIZE": "8",
    "REDIS_SOCKET_TIMEOUT": "0.5",
    "REDIS_POOL_TIMEOUT": "1",
    "REDIS_RETRY_SECONDS": "0.5",
    "UPSTREAM_CONNECT_TIMEOUT": "1",
    "UPSTREAM_READ_TIMEOUT": "2",
    "UPSTREAM_CIRCUIT_FAILURES": "3",
    "UPSTREAM_CIRCUIT_OPEN_SECONDS": "3",
    "UPSTREAM_RETRY_BUDGET_SECONDS": "3",
    "SERVICE_UNAVAILABLE_RETRY_AFTER": "1",
    "SSE_KEEPALIVE_SECONDS": "30",
    "LOG_LEVEL": "WARNING",
}


def _free_port() -> int:
    return embedded.free_port()


class FaultStack:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="aivax-faults-"))
        os.chmod(self.root, 0o755)
        self.pg_data = self.root / "pg" / "data"
        self.redis_proc: subprocess.Popen[bytes] | None = None
        self.redis_port = 0
        self.web: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.web_port = _free_port()
        self.stub = StubServer().start()
        self.env: dict[str, str] = {}
        self.seed: dict[str, Any] = {}

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> FaultStack:
        pg = embedded.start_postgres(self.pg_data, database="aivax")
        self.database_url = pg.url("aivax")
        self.start_redis()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_SETTINGS"))}
        env.update(FAULT_SETTINGS)
        env.update(
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            AIVAX_TEST_RUN_PREFIX=f"faults-{uuid.uuid4().hex[:6]}",
            AIVAX_DATA_DIR=str(self.root / "data"),
            PYTHONPATH=str(REPO),
        )
        self.env = env
        self.manage("migrate", "--noinput", timeout=300)
        out = self.python("-m", "tests.faults.seed", self.stub.base_url)
        self.seed = json.loads(out.strip().splitlines()[-1])
        self.start_web()
        return self

    def stop(self) -> None:
        for proc in (self.web, self.worker, self.redis_proc):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
        self.stub.stop()
        embedded.stop_postgres(self.pg_data)
        shutil.rmtree(self.root, ignore_errors=True)

    def python(self, *args: str, timeout: float = 120) -> str:
        result = subprocess.run(
            [sys.executable, *args], cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if result.returncode != 0:
            raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def manage(self, *args: str, timeout: float = 120) -> str:
        return self.python("manage.py", *args, timeout=timeout)

    # -- PostgreSQL ------------------------------------------------------------------------------------------
    def stop_postgres(self) -> None:
        embedded.stop_postgres(self.pg_data)  # pg_ctl -m fast: open connections get AdminShutdown, as in a restart
        assert not embedded.postgres_running(self.pg_data)

    def start_postgres(self) -> None:
        pg = embedded.start_postgres(self.pg_data, database="aivax")
        assert pg.url("aivax") == self.database_url, "PostgreSQL came back elsewhere"

    def sql(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            return list(conn.execute(query, params or []).fetchall())

    # -- Redis -----------------------------------------------------------------------------------------------
    def start_redis(self) -> None:
        url, self.redis_proc = embedded.start_redis(self.root / "redis", port=self.redis_port or None)
        self.redis_url = url
        self.redis_port = int(url.rsplit(":", 1)[1].split("/")[0])

    def stop_redis(self) -> None:
        assert self.redis_proc is not None
        self.redis_proc.kill()
        self.redis_proc.wait(10)

    # -- the stub upstream -----------------------------------------------------------------------------------
    def stop_stub(self) -> None:
        self.stub.stop()

    def start_stub(self) -> None:
        app = self.stub.app
        self.stub = StubServer(port=self.stub.port)
        self.stub.app = app  # keep scripts and recorded requests
        self.stub.server.config.app = app
        self.stub.start()

    # -- the web process -------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start_web(self) -> None:
        self.web = subprocess.Popen(
            [
                sys.executable,
                *("-m", "uvicorn", "aivax.asgi:application"),
                *("--host", "127.0.0.1", "--port", str(self.web_port), "--log-level", "warning"),
                "--no-access-log",
            ],
            cwd=REPO,
            env=self.env,
            stdout=open(self.root / "web.log", "ab"),  # noqa: SIM115  (the process owns it)
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.web.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"web process did not start:\n{self.web_log()}")
            time.sleep(0.2)

    def kill_web(self) -> None:
        assert self.web is not None
        self.web.send_signal(signal.SIGKILL)
        self.web.wait(10)

    def web_log(self) -> str:
        path = self.root / "web.log"
        return path.read_text(errors="replace")[-6000:] if path.exists() else ""

    # -- the Celery worker -----------------------------------------------------------------------------------
    def start_worker(self) -> None:
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "aivax", "worker", "-P", "solo", "-c", "1", "-l", "warning"],
            cwd=REPO,
            env=self.env,
            stdout=open(self.root / "worker.log", "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )

    def worker_log(self) -> str:
        path = self.root / "worker.log"
        return path.read_text(errors="replace")[-6000:] if path.exists() else ""

    def kill_worker(self) -> None:
        assert self.worker is not None
        self.worker.send_signal(signal.SIGKILL)
        self.worker.wait(10)

    # -- ledger checks ---------------------------------------------------------------------------------------
    def sweep_reservations(self) -> int:
        """What the beat sweeper does, with `older_than` 0: only run when no request is in flight."""
        out = self.manage(
            "shell",
            "-c",
            "from datetime import timedelta; from billing.services import reservations_release_stale as r; "
            "print(sum(iter(lambda: r(older_than=timedelta(0)), 0)))",
        )
        return int(out.strip().splitlines()[-1])

    def held_reservations(self) -> int:
        return int(self.sql("SELECT count(*) FROM billing_reservation WHERE status = 'held'")[0][0])

    def assert_ledger_exact(self) -> None:
        """After the sweeper (run now, nothing in flight), no reservation is held and `manage.py reconcile`
        reports zero drift (one subprocess for both: each Django start costs seconds on a busy CI machine)."""
        out = self.manage(
            "shell",
            "-c",
            "from datetime import timedelta; from django.core.management import call_command; "
            "from billing.services import reservations_release_stale as r; "
            "sum(iter(lambda: r(older_than=timedelta(0)), 0)); call_command('reconcile')",
        )
        assert "0 with drift" in out, out
        assert self.held_reservations() == 0

    # -- requests --------------------------------------------------------------------------------------------
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.seed['key']}"}

    def chat(self, gateway: str, text: str = "hello there", *, stream: bool = False, timeout: float = 20) -> Outcome:
        return asyncio.run(request(self, gateway, text, stream=stream, timeout=timeout))


@dataclass
class Outcome:
    status: int
    retry_after: str | None = None
    body: dict[str, Any] | None = None
    events: list[Any] = field(default_factory=list)
    done: bool = False  # a stream that ended with [DONE]
    error_event: dict[str, Any] | None = None  # a stream that ended with an error event
    transport_error: str | None = None

    @property
    def well_formed(self) -> bool:
        """Never a 500, a 502 from us for our own trouble, or a stream cut without a final event."""
        if self.transport_error is not None:
            return False
        if self.status == 200 and self.events:
            return self.done or self.error_event is not None
        if self.status == 503:
            return self.retry_after is not None and (self.body or {}).get("error", {}).get("code") is not None
        return self.status < 500 or self.status in (502, 504)


async def request(
    stack: FaultStack,
    gateway: str,
    text: str,
    *,
    stream: bool,
    timeout: float = 20,
    client: httpx.AsyncClient | None = None,
) -> Outcome:
    own = client is None
    client = client or httpx.AsyncClient(timeout=timeout)
    payload = {"model": gateway, "messages": [{"role": "user", "content": text}], "stream": stream}
    try:
        async with client.stream(
            "POST", f"{stack.url}/api/v1/chat/completions", json=payload, headers=stack.headers()
        ) as response:
            outcome = Outcome(status=response.status_code, retry_after=response.headers.get("retry-after"))
            if response.headers.get("content-type", "").startswith("text/event-stream"):
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        outcome.done = True
                        continue
                    event = json.loads(data)
                    if "error" in event:
                        outcome.error_event = event
                    else:
                        outcome.events.append(event)
            else:
                raw = await response.aread()
                outcome.body = json.loads(raw) if raw else None
            return outcome
    except (httpx.HTTPError, ValueError) as exc:
        return Outcome(status=0, transport_error=f"{type(exc).__name__}: {exc}")
    finally:
        if own:
            await client.aclose()


class Traffic:
    """`workers` clients sending requests back to back (half of them streams) until stopped; every outcome kept."""

    def __init__(
        self,
        stack: FaultStack,
        gateway: str,
        *,
        workers: int = 6,
        text: str = "one two three four",
        streams_only: bool = False,
    ) -> None:
        self.stack, self.gateway, self.workers, self.text = stack, gateway, workers, text
        self.streams_only = streams_only
        self.outcomes: list[tuple[float, Outcome]] = []  # (when the request started, how it ended)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=20, limits=httpx.Limits(max_connections=100)) as client:

            async def worker(index: int) -> None:
                while not self._stop.is_set():
                    started = time.monotonic()
                    outcome = await request(
                        self.stack, self.gateway, self.text, stream=self.streams_only or index % 2 == 0, client=client
                    )
                    self.outcomes.append((started, outcome))
                    if outcome.status != 200:
                        await asyncio.sleep(0.05)

            await asyncio.gather(*(worker(i) for i in range(self.workers)))

    def since(self, moment: float) -> list[Outcome]:
        return [o for t, o in self.outcomes if t >= moment]

    def wait_for_success(self, after: float, timeout: float) -> float:
        """Seconds from `after` until the start of a request that completed with 200 (fails on timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, o in list(self.outcomes):
                if t > after and o.status == 200 and (o.done or o.body is not None):
                    return t - after
            time.sleep(0.1)
        raise AssertionError(f"no successful request within {timeout}s after recovery")
