"""Rate limits: what an admission costs, and whether limits stay exact when several processes race for them.

    .venv/bin/python bench/rate_limits.py [--admissions 2000] [--processes 4] [--concurrency 16] [--limit 500]

1. Latency and CPU of one admission (quotas.limiter.AsyncLimiter.admit: read every window, then hit every
   limit; two Redis round trips), sequentially, with the limits of one level (requests per minute and per day,
   tokens per minute) and of all three levels (key, organization, plan: nine limits).
2. Exactness: `--processes` processes, each with `--concurrency` concurrent admissions, all asking for more than
   a requests-per-minute limit (moving window) and a tokens-per-minute limit (sliding window counter) hold; the
   number admitted must equal the limit exactly.

Needs only Redis (REDIS_URL, default redis://127.0.0.1:6379/0); keys go under a fresh prefix.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _configure(prefix: str) -> None:
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            CACHE_KEY_PREFIX=prefix,
            RATE_LIMIT_FAIL_OPEN=False,
        )


def _limits(levels: int, subject: str, *, rpm: int = 10**9) -> list:  # type: ignore[type-arg]
    from quotas.limiter import Limit

    found = []
    for level in ("key", "organization", "plan")[:levels]:
        found += [
            Limit(kind="requests", per="minute", amount=rpm, level=level, subject=subject),
            Limit(kind="requests", per="day", amount=10**9, level=level, subject=subject),
            Limit(kind="tokens", per="minute", amount=10**12, level=level, subject=subject),
        ]
    return found


async def _latency(admissions: int, levels: int) -> dict[str, float]:
    from quotas.limiter import AsyncLimiter

    limiter = AsyncLimiter()
    wants = [(limit, 50 if limit.kind == "tokens" else 1) for limit in _limits(levels, uuid.uuid4().hex)]
    for _ in range(20):
        await limiter.admit(wants)
    samples = []
    cpu_start = time.process_time()
    for _ in range(admissions):
        start = time.perf_counter()
        decision = await limiter.admit(wants)
        samples.append((time.perf_counter() - start) * 1000)
        assert decision.allowed
    cpu = (time.process_time() - cpu_start) * 1000 / admissions
    samples.sort()
    return {
        "p50": statistics.median(samples),
        "p99": samples[int(len(samples) * 0.99) - 1],
        "cpu": cpu,
    }


def _racer(prefix: str, subject: str, limit: int, tokens_limit: int, attempts: int, concurrency: int, out) -> None:  # type: ignore[no-untyped-def]
    _configure(prefix)
    from quotas.limiter import AsyncLimiter, Limit

    async def run() -> tuple[int, int]:
        limiter = AsyncLimiter()
        rpm = Limit(kind="requests", per="minute", amount=limit, level="key", subject=subject)
        tpm = Limit(kind="tokens", per="minute", amount=tokens_limit, level="organization", subject=subject)
        admitted_requests = admitted_tokens = 0
        queue = iter(range(attempts))

        async def worker() -> None:
            nonlocal admitted_requests, admitted_tokens
            for i in queue:
                if (await limiter.admit([(rpm, 1)])).allowed:
                    admitted_requests += 1
                if (await limiter.admit([(tpm, 7 if i % 2 else 3)])).allowed:
                    admitted_tokens += 7 if i % 2 else 3

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return admitted_requests, admitted_tokens

    out.put(asyncio.run(run()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--admissions", type=int, default=2000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--limit", type=int, default=500)
    args = parser.parse_args()
    prefix = f"bench-rl-{uuid.uuid4().hex[:8]}"
    _configure(prefix)

    print(f"## Admission cost ({args.admissions} sequential admissions)\n")
    print("| limits | p50 ms | p99 ms | CPU ms/admission |\n|---|---|---|---|")
    for levels in (1, 3):
        result = asyncio.run(_latency(args.admissions, levels))
        name = f"{3 * levels} ({levels} level{'s' if levels > 1 else ''})"
        print(f"| {name} | {result['p50']:.2f} | {result['p99']:.2f} | {result['cpu']:.2f} |")

    subject = uuid.uuid4().hex
    tokens_limit = 10 * args.limit
    attempts = 2 * args.limit  # each process alone asks for more than the limit
    out: multiprocessing.Queue = multiprocessing.Queue()
    racers = [
        multiprocessing.Process(
            target=_racer, args=(prefix, subject, args.limit, tokens_limit, attempts, args.concurrency, out)
        )
        for _ in range(args.processes)
    ]
    start = time.perf_counter()
    for racer in racers:
        racer.start()
    results = [out.get(timeout=300) for _ in racers]
    for racer in racers:
        racer.join()
    elapsed = time.perf_counter() - start
    requests = sum(r[0] for r in results)
    tokens = sum(r[1] for r in results)
    print(
        f"\n## Exactness: {args.processes} processes x {args.concurrency} concurrent, "
        f"{args.processes * attempts * 2} admissions in {elapsed:.1f}s\n"
    )
    print("| limit | asked (all processes) | admitted | exact |\n|---|---|---|---|")
    asked = args.processes * attempts
    print(f"| {args.limit} requests/minute (moving window) | {asked} | {requests} | {requests == args.limit} |")
    print(
        f"| {tokens_limit} tokens/minute (sliding window counter) | {args.processes * attempts * 5} | {tokens} "
        f"| {tokens_limit - 7 < tokens <= tokens_limit} |"
    )

    import redis

    client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


if __name__ == "__main__":
    main()
