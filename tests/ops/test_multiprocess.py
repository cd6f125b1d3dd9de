"""Two web processes and two Celery worker processes on one PostgreSQL and one Redis, as `make run` and the
Docker image run them: a key revoked or a gateway edited in one place is seen by every process at once, billing
stays exact when requests for one organization land on both processes, each document is indexed and billed once
whichever worker takes it, and one /metrics scrape sums every process's counters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from accounts.services import api_key_create, api_key_revoke
from aivax import embedded
from billing.models import BilledRequest, LedgerEntry, Reservation, ReservationStatus
from billing.selectors import account_get
from billing.services import reconcile_balances
from gateways.services import gateway_update

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]
TOKEN = "multi-process-metrics-token-0123456789"


def _child_env(metrics_dir: Path) -> dict[str, str]:
    """The test run's database (the test database, by its real name), Redis and key prefix, for child processes."""
    db = connection.settings_dict
    url = f"postgresql://{db['USER']}@/{db['NAME']}?host={db['HOST']}"
    if db.get("PORT"):
        url += f"&port={db['PORT']}"
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "aivax.settings.test",
        "DATABASE_URL": url,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "METRICS_TOKEN": TOKEN,
        "LOG_LEVEL": "WARNING",
    }


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"{url} exited with {proc.returncode}"
        try:
            response = httpx.get(f"{url}/healthz", timeout=5)
            if response.status_code == 200:
                return
            last = (response.status_code, response.text[:300])
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.2)
    raise AssertionError(f"{url} did not start: {last}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, django_db_setup, django_db_blocker) -> Iterator[dict[str, object]]:
    # Started once for the module (about 10 s on 2 cores); each test still gets its own transactional_db.
    metrics_dir = tmp_path_factory.mktemp("metrics")
    with django_db_blocker.unblock():
        env = _child_env(metrics_dir)
    procs: list[subprocess.Popen[bytes]] = []
    webs: list[str] = []
    try:
        for _ in range(2):
            port = embedded.free_port()
            command = [sys.executable, "-m", "uvicorn", "aivax.asgi:application", "--port", str(port)]
            procs.append(subprocess.Popen([*command, "--log-level", "warning"], cwd=ROOT, env=env))
            webs.append(f"http://127.0.0.1:{port}")
        for n in range(2):
            celery = [sys.executable, "-m", "celery", "-A", "aivax", "worker", "--pool", "solo"]
            celery += ["--hostname", f"w{n}-{os.getpid()}@%h", "--loglevel", "WARNING", "--without-gossip"]
            procs.append(subprocess.Popen([*celery, "--without-mingle"], cwd=ROOT, env=env))
        for url, proc in zip(webs, procs, strict=False):
            _wait_healthy(url, proc)
        yield {"webs": webs, "workers": procs[2:]}
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _chat(url: str, key: str, model: str, text: str = "hello") -> httpx.Response:
    return httpx.post(
        f"{url}/api/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": text}]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


def test_revocation_and_gateway_edits_are_seen_by_every_process(cluster, org, owner, gateway, stub, upstream_model):
    stub.app.script(upstream_model, content="hi")
    key = api_key_create(organization=org, name="two processes", scopes=["inference"], created_by=owner)
    webs = cluster["webs"]
    for url in webs:  # warm every cache in both processes
        assert _chat(url, key.raw, gateway.slug).status_code == 200

    gateway_update(gateway=gateway, is_active=False)
    for url in webs:
        response = _chat(url, key.raw, gateway.slug)
        assert response.status_code == 403 and response.json()["error"]["code"] == "gateway_inactive", url
    gateway_update(gateway=gateway, is_active=True, system_instruction="Answer in French.")
    for url in webs:
        assert _chat(url, key.raw, gateway.slug).status_code == 200
        system = stub.app.state.requests[-1]["messages"][0]
        assert system["role"] == "system" and "Answer in French." in system["content"], url

    api_key_revoke(key=key.key)
    for url in webs:
        response = _chat(url, key.raw, gateway.slug)
        assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key", url


def test_billing_is_exact_across_processes(cluster, org, owner, gateway, stub, upstream_model):
    stub.app.script(upstream_model, content="one two three four")
    key = api_key_create(organization=org, name="load", scopes=["inference"], created_by=owner)
    webs = cluster["webs"]
    before = account_get(organization_id=org.pk).balance
    served_before = _served(webs[1], gateway.slug)
    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(lambda i: _chat(webs[i % 2], key.raw, gateway.slug, f"q{i}"), range(40)))
    assert [r.status_code for r in responses] == [200] * 40
    bodies = [json.loads(r.text, parse_float=Decimal) for r in responses]  # amounts are exact decimals
    billed = sum((line["amount"] for b in bodies for line in b["generation_context"]["generated_usage"]), Decimal(0))
    ids = {b["id"] for b in bodies}
    assert len(ids) == 40
    assert BilledRequest.unscoped.filter(request_id__in=ids).count() == 40
    charged = sum((e.amount for e in LedgerEntry.unscoped.filter(request_id__in=ids)), Decimal(0))
    assert charged == billed > 0
    assert account_get(organization_id=org.pk).balance == before - billed
    assert all(check.ok for check in reconcile_balances(organization_id=org.pk))
    assert not Reservation.unscoped.filter(organization_id=org.pk, status=ReservationStatus.HELD).exists()

    # One scrape of either process sums both processes' counters (prometheus multi-process mode).
    assert _served(webs[0], gateway.slug) - served_before == 40


def _served(url: str, gateway_slug: str) -> float:
    scrape = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    return sum(
        s.value
        for family in text_string_to_metric_families(scrape)
        for s in family.samples
        if s.name == "aivax_http_requests_total" and s.labels.get("gateway") == gateway_slug
    )


def test_each_document_is_indexed_and_billed_once_across_workers(cluster, funded_org, platform_prices):
    from knowledge.models import Document, DocumentStatus
    from knowledge.services import collection_create, document_upsert

    collection = collection_create(organization=funded_org, name="Handbook")
    for n in range(8):
        document_upsert(collection=collection, name=f"doc-{n}.md", contents=f"Section {n}. " + "Warranty terms. " * 40)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        states = list(Document.unscoped.filter(collection=collection).values_list("status", flat=True))
        if all(s in (DocumentStatus.INDEXED, DocumentStatus.FAILED) for s in states):
            break
        time.sleep(0.3)
    assert states == [DocumentStatus.INDEXED] * 8
    embedding_rows = LedgerEntry.unscoped.filter(organization=funded_org, request_id__startswith="embed-")
    assert embedding_rows.values("request_id").distinct().count() == 8
    assert all(check.ok for check in reconcile_balances(organization_id=funded_org.pk))
