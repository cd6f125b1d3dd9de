"""Added latency and throughput: the stub upstream called (a) directly, (b) through aivax, (c) through LiteLLM
proxy, at concurrency 1, 16 and 64, non-streaming and streaming. Everything runs on loopback on this machine.

    .venv/bin/python bench/inference_overhead.py [--requests 400] [--litellm-venv .data/litellm-venv]
                                                 [--billing on|off] [--workers 1]

Latency is measured from outside (the client's clock); added latency = proxy percentile - direct percentile.
LiteLLM runs from its own virtualenv (pip install 'litellm[proxy]==1.106.12'), master key only, no database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable
MESSAGES = [{"role": "user", "content": "Explain in one sentence why AI gateways are useful for teams."}]
STUB_MODEL = "bench-model"


def free_port() -> int:
    from aivax.embedded import free_port as fp

    return fp()


def wait_http(url: str, timeout: float = 60, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2, headers=headers).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


@dataclass
class Result:
    target: str
    mode: str
    concurrency: int
    latencies: list[float]
    ttfc: list[float]
    wall: float
    errors: int
    peak_rss_mb: float
    cpu_ms_per_request: float

    def pct(self, values: list[float], p: float) -> float:
        if not values:
            return float("nan")
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.wall if self.wall else 0.0


def tree_cpu_seconds(pid: int) -> float:
    """User+system CPU of a process and its children: less sensitive to a busy machine than wall time."""
    try:
        proc = psutil.Process(pid)
        total = 0.0
        for p in [proc, *proc.children(recursive=True)]:
            times = p.cpu_times()
            total += times.user + times.system
        return total
    except psutil.Error:
        return float("nan")


class RssSampler(threading.Thread):
    def __init__(self, pid: int | None) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.running = pid, 0.0, True

    def run(self) -> None:
        while self.running and self.pid:
            try:
                proc = psutil.Process(self.pid)
                total = sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])
                self.peak = max(self.peak, total / 2**20)
            except psutil.Error:
                pass
            time.sleep(0.05)


async def one_request(client: httpx.AsyncClient, url: str, body: dict, stream: bool) -> tuple[float, float]:
    started = time.perf_counter()
    if not stream:
        response = await client.post(url, json=body)
        response.raise_for_status()
        response.json()
        elapsed = time.perf_counter() - started
        return elapsed, elapsed
    first = None
    async with client.stream("POST", url, json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if first is None and '"content":"' in line and '"content":""' not in line:
                first = time.perf_counter() - started
            if line.strip() == "data: [DONE]":
                break
    elapsed = time.perf_counter() - started
    return elapsed, first if first is not None else elapsed


async def run_load(
    url: str, headers: dict[str, str], model: str, stream: bool, concurrency: int, total: int
) -> tuple[list[float], list[float], float, int]:
    body = {"model": model, "messages": MESSAGES, "stream": stream, "max_tokens": 64}
    if stream:
        body["stream_options"] = {"include_usage": True}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    ttfc: list[float] = []
    errors = 0
    queue = iter(range(total))
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=60) as client:
        for _ in range(min(concurrency, 8)):  # warm connections and caches
            await one_request(client, url, body, stream)

        async def worker() -> None:
            nonlocal errors
            for _ in queue:
                try:
                    total_s, first_s = await one_request(client, url, body, stream)
                    latencies.append(total_s)
                    ttfc.append(first_s)
                except httpx.HTTPError:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return latencies, ttfc, wall, errors


def start_stub() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([PY, "-m", "aivax.testing.stub_upstream", "--port", str(port)], cwd=ROOT)
    wait_http(f"http://127.0.0.1:{port}/v1/models")
    return proc, f"http://127.0.0.1:{port}/v1"


def start_aivax(
    stub_url: str, workers: int, billing: bool, tmp: Path
) -> tuple[subprocess.Popen[bytes], str, str, str, object]:
    from aivax import embedded

    pg = embedded.start_postgres(tmp / "pg", database="aivax_bench")
    env = {
        **os.environ,
        "DATABASE_URL": pg.url("aivax_bench"),
        "DJANGO_SETTINGS_MODULE": "aivax.settings.production",
        "SECRET_KEY": "bench-" + "x" * 40,
        "DEBUG": "0",
        "CACHE_KEY_PREFIX": f"bench{os.getpid()}",
        "OUTBOUND_ALLOW_LOOPBACK": "1",
        "LOG_LEVEL": "WARNING",
        "SESSION_COOKIE_SECURE": "0",
        "BILLING_ENABLED": "1" if billing else "0",
    }
    subprocess.run([PY, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    setup = textwrap.dedent(f"""
        from decimal import Decimal
        from accounts.services import user_create, organization_create, api_key_create
        from billing.models import Price
        from billing.services import credit_grant
        from gateways.services import catalog_model_upsert, gateway_create
        user = user_create(email="bench@example.com", password=None)
        org = organization_create(name="Bench", owner=user)
        from quotas.models import Plan  # rate limits are checked on every request, but never reached here
        org.plan = Plan.objects.create(name="Bench", requests_per_minute=2 * 10**9, requests_per_day=2 * 10**9,
                                       tokens_per_minute=2 * 10**9)
        org.save()
        credit_grant(organization=org, amount=Decimal("1000000"), reason="benchmark", staff_user=None)
        model = catalog_model_upsert(name="@bench/stub", base_url="{stub_url}", upstream_model="{STUB_MODEL}")
        if {billing}:
            for sku, price in {{"inference.chat_completions.in": "0.00000025",
                                "inference.chat_completions.out": "0.000002"}}.items():
                Price.objects.create(catalog_model=model, sku=sku, unit_price=Decimal(price))
        gateway = gateway_create(organization=org, name="bench", catalog_model=model)
        key = api_key_create(organization=org, name="bench", scopes=["inference"])
        print("RESULT", key.raw, gateway.slug)
    """)
    result = subprocess.run([PY, "manage.py", "shell", "-c", setup], cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"seeding the bench database failed:\n{result.stderr[-3000:]}")
    out = result.stdout
    _, key, slug = next(line for line in out.splitlines() if line.startswith("RESULT")).split()
    port = free_port()
    proc = subprocess.Popen(
        [
            PY,
            "-m",
            "uvicorn",
            "aivax.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
        ],
        cwd=ROOT,
        env=env,
    )
    wait_http(f"http://127.0.0.1:{port}/healthz")
    return proc, f"http://127.0.0.1:{port}/api/v1", key, slug, pg


def start_litellm(venv: Path, stub_url: str, workers: int, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    config = tmp / "litellm.yaml"
    config.write_text(
        textwrap.dedent(f"""
        model_list:
          - model_name: bench
            litellm_params:
              model: openai/{STUB_MODEL}
              api_base: {stub_url}
              api_key: sk-stub
        general_settings:
          master_key: sk-litellm-bench
        litellm_settings:
          telemetry: False
    """)
    )
    port = free_port()
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_MODE": "PRODUCTION"}
    proc = subprocess.Popen(
        [
            str(venv / "bin" / "litellm"),
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--num_workers",
            str(workers),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_http(f"http://127.0.0.1:{port}/health/liveliness", timeout=180)
    return proc, f"http://127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--billing", choices=["on", "off"], default="on")
    parser.add_argument("--litellm-venv", default=str(ROOT / ".data" / "litellm-venv"))
    parser.add_argument("--skip-litellm", action="store_true")
    parser.add_argument("--json", help="also write raw figures to this file")
    args = parser.parse_args()
    concurrencies = [int(c) for c in args.concurrency.split(",")]

    tmp = Path(tempfile.mkdtemp(prefix="aivax-bench-"))
    os.chmod(tmp, 0o755)
    procs: list[subprocess.Popen[bytes]] = []
    pg_dir = None
    try:
        stub_proc, stub_url = start_stub()
        procs.append(stub_proc)
        pg_dir = tmp / "pg"  # stopped in `finally` even if start-up fails half-way
        aivax_proc, aivax_url, key, slug, _pg = start_aivax(stub_url, args.workers, args.billing == "on", tmp)
        procs.append(aivax_proc)
        # aivax's CPU includes its PostgreSQL (billing writes); Redis is shared and not counted.
        extra_cpu_pids = {"aivax": [int((pg_dir / "postmaster.pid").read_text().split()[0])]}
        targets = [
            ("direct", f"{stub_url}/chat/completions", {}, STUB_MODEL, stub_proc.pid),
            ("aivax", f"{aivax_url}/chat/completions", {"Authorization": f"Bearer {key}"}, slug, aivax_proc.pid),
        ]
        if not args.skip_litellm:
            litellm_proc, litellm_url = start_litellm(Path(args.litellm_venv), stub_url, args.workers, tmp)
            procs.append(litellm_proc)
            targets.append(
                (
                    "litellm",
                    f"{litellm_url}/v1/chat/completions",
                    {"Authorization": "Bearer sk-litellm-bench"},
                    "bench",
                    litellm_proc.pid,
                )
            )

        results: list[Result] = []
        for mode in ("non-stream", "stream"):
            for concurrency in concurrencies:
                total = args.requests if concurrency > 1 else max(100, args.requests // 4)
                for name, url, headers, model, pid in targets:
                    sampler = RssSampler(pid)
                    sampler.start()
                    cpu_pids = [pid, *extra_cpu_pids.get(name, [])]
                    cpu_before = sum(tree_cpu_seconds(p) for p in cpu_pids)
                    lat, ttfc, wall, errors = asyncio.run(
                        run_load(url, headers, model, mode == "stream", concurrency, total)
                    )
                    sampler.running = False
                    sampler.join()
                    # Warm-up requests are included in the CPU delta: a small overestimate, the same for all.
                    cpu_ms = (sum(tree_cpu_seconds(p) for p in cpu_pids) - cpu_before) * 1000 / max(1, len(lat))
                    results.append(Result(name, mode, concurrency, lat, ttfc, wall, errors, sampler.peak, cpu_ms))
                    print(
                        f"  {mode:10} c={concurrency:<3} {name:8} rps={results[-1].rps:8.1f} "
                        f"p50={results[-1].pct(lat, 50):7.2f}ms errors={errors}",
                        flush=True,
                    )
        print_table(results, args)
        if args.json:
            Path(args.json).write_text(json.dumps([r.__dict__ for r in results]))
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        if pg_dir is not None:
            from aivax import embedded

            embedded.stop_postgres(pg_dir)
        shutil.rmtree(tmp, ignore_errors=True)


def print_table(results: list[Result], args: argparse.Namespace) -> None:
    by = {(r.target, r.mode, r.concurrency): r for r in results}
    print()
    print(
        f"workers per proxy: {args.workers}; billing: {args.billing}; requests per cell: {args.requests} "
        f"(c=1: {max(100, args.requests // 4)}); machine: {os.cpu_count()} cores"
    )
    print()
    print(
        "| mode | c | target | req/s | p50 ms | p95 ms | p99 ms | added p50 | added p95 | added p99 | "
        "first chunk p50 ms | CPU ms/req | peak RSS MB | errors |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (target, mode, c), r in by.items():
        direct = by[("direct", mode, c)]
        added = [r.pct(r.latencies, p) - direct.pct(direct.latencies, p) for p in (50, 95, 99)]
        print(
            f"| {mode} | {c} | {target} | {r.rps:.0f} | {r.pct(r.latencies, 50):.2f} | {r.pct(r.latencies, 95):.2f} | "
            f"{r.pct(r.latencies, 99):.2f} | {added[0]:.2f} | {added[1]:.2f} | {added[2]:.2f} | "
            f"{r.pct(r.ttfc, 50):.2f} | {r.cpu_ms_per_request:.2f} | {r.peak_rss_mb:.0f} | {r.errors} |"
        )
    print()
    for mode in ("non-stream", "stream"):
        for c in sorted({k[2] for k in by}):
            a, lt, direct = by.get(("aivax", mode, c)), by.get(("litellm", mode, c)), by[("direct", mode, c)]
            if a and lt:
                base = direct.pct(direct.latencies, 50)
                added_a = a.pct(a.latencies, 50) - base
                added_l = lt.pct(lt.latencies, 50) - base
                print(
                    f"{mode} c={c}: aivax/litellm throughput = {a.rps / lt.rps:.2f}x; "
                    f"added p50 aivax {added_a:.2f} ms vs litellm {added_l:.2f} ms"
                )


if __name__ == "__main__":
    main()
