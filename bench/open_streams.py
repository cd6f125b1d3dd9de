"""Open streams: N concurrent slow streams through ONE aivax web process (billing on), all open at once.

    .venv/bin/python bench/open_streams.py [--streams 1000 5000] [--words 40] [--chunk-delay 1.0]

The stub upstream (its own process) sends one word every --chunk-delay seconds, so each stream stays open for
about words x delay seconds; the client opens every stream, waits until each has its first chunk, and reads them
to the end. Reported per level: errors (anything but 200 ending in [DONE]; statuses counted), time to first
chunk p50/p99, and memory per open stream: (peak RSS of the web process while all streams are open - its RSS
before) / N. Each stream holds two sockets in the web process (client and upstream) plus one in the client and
one in the stub: the open-file limit is raised to its hard limit here, and the admission limit
(MAX_INFLIGHT_REQUESTS) is set above N.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import inference_overhead as common  # bench/ helpers: stub, stack, RSS sampling


async def one_stream(client: httpx.AsyncClient, url: str, body: dict) -> tuple[str, float | None]:
    started = time.perf_counter()
    first: float | None = None
    try:
        async with client.stream("POST", url, json=body) as response:
            if response.status_code != 200:
                await response.aread()
                return str(response.status_code), first
            done = False
            async for line in response.aiter_lines():
                if first is None and '"content":"' in line and '"content":""' not in line:
                    first = time.perf_counter() - started
                if line.startswith('data: {"error"'):
                    return "error event", first
                if line.strip() == "data: [DONE]":
                    done = True
            return ("ok" if done else "cut"), first
    except httpx.HTTPError as exc:
        return type(exc).__name__, first


async def run_level(
    url: str, key: str, slug: str, streams: int, words: int, web_pid: int, ramp: float = 0.0
) -> dict[str, object]:
    body = {
        "model": slug,
        "messages": [{"role": "user", "content": " ".join(f"w{i}" for i in range(words))}],
        "stream": True,
        "max_tokens": words + 8,
    }
    proc = psutil.Process(web_pid)
    base_rss = proc.memory_info().rss
    limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=streams + 10)
    timeout = httpx.Timeout(connect=120, read=120, write=60, pool=300)
    peak = base_rss
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, limits=limits, timeout=timeout) as client:
        started = time.monotonic()
        tasks = []
        for index in range(streams):  # opened evenly over `ramp` seconds (0: all at once, a burst)
            tasks.append(asyncio.ensure_future(one_stream(client, url, body)))
            if ramp and index % 50 == 49:
                await asyncio.sleep(ramp * 50 / streams)
                peak = max(peak, proc.memory_info().rss)
        while not all(t.done() for t in tasks):
            peak = max(peak, proc.memory_info().rss)
            await asyncio.sleep(0.25)
        wall = time.monotonic() - started
        results = [t.result() for t in tasks]
    outcomes = Counter(r[0] for r in results)
    firsts = sorted(r[1] for r in results if r[1] is not None)
    return {
        "streams": streams,
        "ok": outcomes.get("ok", 0),
        "errors": streams - outcomes.get("ok", 0),
        "outcomes": dict(outcomes),
        "first_p50_ms": statistics.median(firsts) * 1000 if firsts else float("nan"),
        "first_p99_ms": firsts[min(len(firsts) - 1, int(len(firsts) * 0.99))] * 1000 if firsts else float("nan"),
        "kb_per_stream": (peak - base_rss) / streams / 1024,
        "base_rss_mb": base_rss / 2**20,
        "peak_rss_mb": peak / 2**20,
        "wall_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--words", type=int, default=40)
    parser.add_argument("--chunk-delay", type=float, default=1.0)
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds over which the streams are opened")
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tmp = Path(tempfile.mkdtemp(prefix="aivax-open-streams-"))
    stub_port = common.free_port()
    stub = common.subprocess.Popen(
        [common.PY, "-m", "aivax.testing.stub_upstream", "--port", str(stub_port), "--chunk-delay",
         str(args.chunk_delay)],
        cwd=common.ROOT,
    )  # fmt: skip
    common.wait_http(f"http://127.0.0.1:{stub_port}/v1/models")
    os.environ["MAX_INFLIGHT_REQUESTS"] = str(max(args.streams) + 100)
    os.environ["UPSTREAM_READ_TIMEOUT"] = "120"
    web = None
    try:
        web, url, key, slug, _pg = common.start_aivax(f"http://127.0.0.1:{stub_port}/v1", 1, True, tmp)
        web_pid = web.pid
        children = psutil.Process(web.pid).children(recursive=True)
        if children:  # uvicorn --workers 1 may run the app in a child process
            web_pid = children[0].pid
        url = f"{url}/chat/completions"
        asyncio.run(run_level(url, key, slug, 20, 3, web_pid))  # warm up
        print(
            f"open streams through one web process; {args.words} words, one every {args.chunk_delay}s, "
            f"opened over {args.ramp}s"
        )
        print("| streams | ok | errors | first chunk p50 | first chunk p99 | KB per open stream | RSS before -> peak |")
        print("|---|---|---|---|---|---|---|")
        for streams in args.streams:
            r = asyncio.run(run_level(url, key, slug, streams, args.words, web_pid, args.ramp))
            print(
                f"| {r['streams']} | {r['ok']} | {r['errors']} {r['outcomes'] if r['errors'] else ''} "
                f"| {r['first_p50_ms']:.0f} ms | {r['first_p99_ms']:.0f} ms | {r['kb_per_stream']:.1f} "
                f"| {r['base_rss_mb']:.0f} -> {r['peak_rss_mb']:.0f} MB |",
                flush=True,
            )
    finally:
        stub.terminate()
        if web is not None:  # a failed start must not leave the stub and PostgreSQL running
            web.terminate()
            web.wait(20)
        stub.wait(20)
        from aivax import embedded

        embedded.stop_postgres(tmp / "pg")
        shutil.rmtree(tmp, ignore_errors=True)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


if __name__ == "__main__":
    main()
