"""What the Responses face costs on top of chat completions: the same gateway, stub upstream and server, called
at /chat/completions and at /responses (stored and not), streamed and not. Reports latency percentiles and the
server's CPU ms per request (aivax's own PostgreSQL included), as bench/inference_overhead.py does.

    .venv/bin/python bench/responses_overhead.py --requests 300
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inference_overhead import MESSAGES, start_aivax, start_stub, tree_cpu_seconds


def _body(face: str, model: str, stream: bool) -> tuple[str, dict]:
    if face == "chat":
        body = {"model": model, "messages": MESSAGES, "stream": stream, "max_tokens": 64}
        if stream:
            body["stream_options"] = {"include_usage": True}
        return "/chat/completions", body
    return "/responses", {
        "model": model,
        "input": MESSAGES,
        "stream": stream,
        "max_output_tokens": 64,
        "store": face == "responses+store",
    }


async def _one(client: httpx.AsyncClient, url: str, body: dict, stream: bool) -> float:
    started = time.perf_counter()
    if not stream:
        response = await client.post(url, json=body)
        response.raise_for_status()
        response.json()
    else:
        async with client.stream("POST", url, json=body) as response:
            response.raise_for_status()
            async for _ in response.aiter_bytes():
                pass
    return time.perf_counter() - started


async def _load(url: str, key: str, body: dict, stream: bool, concurrency: int, total: int) -> list[float]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    queue = iter(range(total))
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, limits=limits, timeout=60) as client:
        for _ in range(min(concurrency, 8)):
            await _one(client, url, body, stream)

        async def worker() -> None:
            for _ in queue:
                latencies.append(await _one(client, url, body, stream))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", default="1,16")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="aivax-bench-"))
    os.chmod(tmp, 0o755)
    procs = []
    pg_dir = tmp / "pg"
    try:
        stub_proc, stub_url = start_stub()
        procs.append(stub_proc)
        aivax_proc, aivax_url, key, slug, _pg = start_aivax(stub_url, 1, True, tmp)
        procs.append(aivax_proc)
        pids = [aivax_proc.pid, int((pg_dir / "postmaster.pid").read_text().split()[0])]
        print("| mode | c | face | p50 ms | p95 ms | CPU ms/req |")
        print("|---|---|---|---|---|---|")
        for mode in ("non-stream", "stream"):
            for concurrency in [int(c) for c in args.concurrency.split(",")]:
                for face in ("chat", "responses", "responses+store"):
                    path, body = _body(face, slug, mode == "stream")
                    before = sum(tree_cpu_seconds(p) for p in pids)
                    lat = asyncio.run(_load(aivax_url + path, key, body, mode == "stream", concurrency, args.requests))
                    cpu_ms = (sum(tree_cpu_seconds(p) for p in pids) - before) * 1000 / len(lat)
                    figures = f"{_pct(lat, 50):.2f} | {_pct(lat, 95):.2f} | {cpu_ms:.2f}"
                    print(f"| {mode} | {concurrency} | {face} | {figures} |", flush=True)
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except Exception:
                proc.kill()
        from aivax import embedded

        embedded.stop_postgres(pg_dir)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
