"""Billing's cost per request: pricing, and reserve + settle throughput against a real PostgreSQL.

    .venv/bin/python bench/billing_overhead.py                 # private embedded PostgreSQL, ~1 minute
    .venv/bin/python bench/billing_overhead.py --requests 4000 --concurrency 1,16,64
    DATABASE_URL=postgresql://... .venv/bin/python bench/billing_overhead.py   # a scratch database of yours

Each "request" is what the inference path does: price_chat_completion + estimate, reserve, settle (4 ledger-side
statements in 2 transactions). Measured with the sync functions in one thread, and with the async wrappers
(`areserve`/`asettle`, executor threads, close_old_connections around each call) at several concurrencies, with
CONN_MAX_AGE=0 (a new connection per call: the default setting) and CONN_MAX_AGE=60 (persistent connections).
"One org" puts every request on a single account row (the worst case: they serialise on its row lock); "16 orgs"
spreads them. Reconciliation must report zero drift at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _setup_database() -> Path | None:
    if os.environ.get("DATABASE_URL"):
        return None
    from aivax import embedded

    tmp = Path(tempfile.mkdtemp(prefix="aivax-bench-billing-"))
    os.chmod(tmp, 0o755)
    pg = embedded.start_postgres(tmp / "data", database="bench")
    os.environ["DATABASE_URL"] = pg.url("bench")
    return tmp


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _one_request(org_id: int, catalog_model, request_id: str) -> None:
    from billing.pricing import estimate_max_cost, price_chat_completion
    from billing.services import reserve, settle

    estimate = estimate_max_cost(catalog_model_id=catalog_model.id, prompt_tokens=500, max_completion_tokens=256)
    reserve(organization_id=org_id, request_id=request_id, amount=estimate)
    lines = price_chat_completion(
        model_name=catalog_model.name,
        catalog_model_id=catalog_model.id,
        prompt_tokens=500,
        cached_tokens=128,
        completion_tokens=200,
        estimated=False,
        byo=False,
    )
    settle(
        request_id=request_id,
        organization_id=org_id,
        lines=lines,
        gateway_id=None,
        api_key_id=None,
        model=catalog_model.name,
        metadata={"bench": "1"},
    )


async def _one_request_async(org_id: int, catalog_model, request_id: str) -> float:
    from billing.pricing import aestimate_max_cost, aprice_chat_completion
    from billing.services import areserve, asettle

    started = time.perf_counter()
    estimate = await aestimate_max_cost(catalog_model_id=catalog_model.id, prompt_tokens=500, max_completion_tokens=256)
    await areserve(organization_id=org_id, request_id=request_id, amount=estimate)
    lines = await aprice_chat_completion(
        model_name=catalog_model.name,
        catalog_model_id=catalog_model.id,
        prompt_tokens=500,
        cached_tokens=128,
        completion_tokens=200,
        estimated=False,
        byo=False,
    )
    await asettle(
        request_id=request_id,
        organization_id=org_id,
        lines=lines,
        gateway_id=None,
        api_key_id=None,
        model=catalog_model.name,
        metadata={"bench": "1"},
    )
    return time.perf_counter() - started


def bench_pricing(catalog_model, n: int = 20000) -> float:
    from billing.pricing import price_chat_completion

    started = time.perf_counter()
    for _ in range(n):
        price_chat_completion(
            model_name=catalog_model.name,
            catalog_model_id=catalog_model.id,
            prompt_tokens=500,
            cached_tokens=128,
            completion_tokens=200,
            estimated=False,
            byo=False,
        )
    return (time.perf_counter() - started) / n * 1e6


def bench_sync(org_ids: list[int], catalog_model, n: int) -> tuple[float, float, float]:
    latencies = []
    started = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        _one_request(org_ids[i % len(org_ids)], catalog_model, f"sync-{uuid.uuid4().hex}")
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    return n / elapsed, _percentile(latencies, 0.5) * 1e3, _percentile(latencies, 0.99) * 1e3


async def bench_async(org_ids: list[int], catalog_model, n: int, concurrency: int) -> tuple[float, float, float]:
    semaphore = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def run(i: int) -> None:
        async with semaphore:
            org_id = org_ids[i % len(org_ids)]
            latencies.append(await _one_request_async(org_id, catalog_model, f"async-{uuid.uuid4().hex}"))

    started = time.perf_counter()
    await asyncio.gather(*(run(i) for i in range(n)))
    elapsed = time.perf_counter() - started
    return n / elapsed, _percentile(latencies, 0.5) * 1e3, _percentile(latencies, 0.99) * 1e3


def _fixtures(orgs: int):
    from django.contrib.auth.models import Permission

    from accounts.services import organization_create, user_create
    from billing import skus
    from billing.models import Price
    from billing.services import credit_grant
    from gateways.models import CatalogModel

    owner = user_create(email=f"bench-{uuid.uuid4().hex[:8]}@bench.test", password=None)
    owner.user_permissions.add(Permission.objects.get(codename="view_all_usage"))
    owner = type(owner).objects.get(pk=owner.pk)
    model = CatalogModel.objects.create(
        name=f"@bench/model-{uuid.uuid4().hex[:6]}", base_url="http://127.0.0.1:1/v1", upstream_model="m"
    )
    for sku, price in (
        (skus.CHAT_IN, "0.00000015"),
        (skus.CHAT_IN_CACHED, "0.000000075"),
        (skus.CHAT_OUT, "0.0000006"),
    ):
        Price.objects.create(catalog_model=model, sku=sku, unit_price=Decimal(price))
    ids = []
    for i in range(orgs):
        org = organization_create(name=f"Bench {uuid.uuid4().hex[:6]} {i}", owner=owner)
        credit_grant(organization=org, amount=Decimal("1000000"), reason="benchmark", staff_user=owner)
        ids.append(org.pk)
    return model, ids


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", default="1,16,64")
    args = parser.parse_args()
    tmp = _setup_database()
    from aivax.celery import prefer_settings

    prefer_settings("aivax.settings.dev")  # importing aivax defaulted them to production
    try:
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        model, many = _fixtures(16)
        one = many[:1]
        print(f"PostgreSQL {connection.cursor().connection.info.server_version}, {os.cpu_count()} cores")
        print(f"price_chat_completion (cached prices): {bench_pricing(model):.1f} µs/call\n")
        print(f"{'mode':44} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
        levels = [int(c) for c in args.concurrency.split(",")]
        for max_age in (0, 60):
            settings.DATABASES["default"]["CONN_MAX_AGE"] = max_age
            connection.close()
            rate, p50, p99 = bench_sync(one, model, args.requests)
            print(f"{f'sync, 1 thread, one org, CONN_MAX_AGE={max_age}':44} {rate:8.0f} {p50:8.2f} {p99:8.2f}")
            for orgs, label in ((one, "one org"), (many, "16 orgs")):
                for level in levels:
                    rate, p50, p99 = asyncio.run(bench_async(orgs, model, args.requests, level))
                    name = f"async x{level}, {label}, CONN_MAX_AGE={max_age}"
                    print(f"{name:44} {rate:8.0f} {p50:8.2f} {p99:8.2f}")
        from billing.services import reconcile_balances

        drift = [c for c in reconcile_balances() if not c.ok]
        print(f"\nreconciliation: {len(drift)} organization(s) with drift")
        return 1 if drift else 0
    finally:
        if tmp is not None:
            from aivax import embedded

            embedded.stop_postgres(tmp / "data")
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
