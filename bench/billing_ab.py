"""Billing's cost per inference request: the same sequential load through aivax with BILLING_ENABLED on and off,
reporting CPU per request of the web process and of aivax's PostgreSQL (read from /proc), and wall time.

    .venv/bin/python bench/billing_ab.py [--requests 300]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import inference_overhead as bench


def measure(billing: bool, requests: int) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="aivax-billing-ab-"))
    os.chmod(tmp, 0o755)
    from aivax import embedded

    stub, stub_url = bench.start_stub()
    try:
        web, url, key, slug, _pg = bench.start_aivax(stub_url, 1, billing, tmp)
    except BaseException:
        stub.terminate()
        embedded.stop_postgres(tmp / "pg")
        raise
    postmaster = int((tmp / "pg" / "postmaster.pid").read_text().split()[0])
    body = {"model": slug, "messages": bench.MESSAGES}
    try:
        with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            for _ in range(20):
                client.post(f"{url}/chat/completions", json=body).raise_for_status()
            web0, pg0 = bench.tree_cpu_seconds(web.pid), bench.tree_cpu_seconds(postmaster)
            started = time.perf_counter()
            for _ in range(requests):
                client.post(f"{url}/chat/completions", json=body).raise_for_status()
            wall = time.perf_counter() - started
            web1, pg1 = bench.tree_cpu_seconds(web.pid), bench.tree_cpu_seconds(postmaster)
    finally:
        web.terminate()
        stub.terminate()
        web.wait()
        embedded.stop_postgres(tmp / "pg")
    return {
        "web_cpu_ms": (web1 - web0) * 1000 / requests,
        "pg_cpu_ms": (pg1 - pg0) * 1000 / requests,
        "wall_ms": wall * 1000 / requests,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    on, off = measure(True, args.requests), measure(False, args.requests)
    print("| billing | web CPU ms/req | PostgreSQL CPU ms/req | total CPU ms/req | wall ms/req |")
    print("|---|---|---|---|---|")
    for name, r in (("on", on), ("off", off)):
        total = r["web_cpu_ms"] + r["pg_cpu_ms"]
        print(f"| {name} | {r['web_cpu_ms']:.2f} | {r['pg_cpu_ms']:.2f} | {total:.2f} | {r['wall_ms']:.2f} |")
    cost = 1 - (off["web_cpu_ms"] + off["pg_cpu_ms"]) / (on["web_cpu_ms"] + on["pg_cpu_ms"])
    print(f"\nthroughput cost of billing at CPU saturation: {cost:.0%} (target <= 15%)")


if __name__ == "__main__":
    main()
