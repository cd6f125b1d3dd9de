"""Console pages under odd data: the knowledge list with queued documents and none processing, and the usage CSV
export with tenant text that spreadsheets would run as a formula."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from django.test import Client

from billing import skus
from billing.pricing import UsageLine
from billing.services import charge
from knowledge.models import Document, DocumentStatus
from knowledge.services import collection_create, document_upsert
from tests.console.stack import fund


def test_knowledge_list_with_queued_and_no_processing_documents(as_dev: Client, org) -> None:
    collection = collection_create(organization=org, name="Queue only")
    document = document_upsert(collection=collection, name="a.txt", contents="hello").document
    Document.objects.for_org(org).filter(pk=document.pk).update(status=DocumentStatus.QUEUED)
    other = collection_create(organization=org, name="Processing only")
    busy = document_upsert(collection=other, name="b.txt", contents="hello").document
    Document.objects.for_org(org).filter(pk=busy.pk).update(status=DocumentStatus.PROCESSING)
    response = as_dev.get("/console/knowledge/")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("1 in progress") == 2


def _streamed(response) -> str:
    from asgiref.sync import async_to_sync

    async def read() -> str:
        return "".join([chunk.decode() async for chunk in response.streaming_content])

    return async_to_sync(read)()


def test_usage_export_escapes_formulas(as_billing: Client, org) -> None:
    fund(org, "5")
    line = UsageLine(skus.CHAT_OUT, 10, Decimal("0.000002"), Decimal("0.00002"), '=HYPERLINK("http://x")')
    charge(organization_id=org.pk, request_id="req_f", lines=[line], model="@cmd|' /C calc'!A0")
    rows = list(csv.DictReader(io.StringIO(_streamed(as_billing.get("/console/usage/export.csv?days=30")))))
    charged = next(r for r in rows if r["request_id"] == "req_f")
    assert charged["model"] == "'@cmd|' /C calc'!A0"
    assert charged["description"] == '\'=HYPERLINK("http://x")'
    assert Decimal(charged["balance_delta"]) < 0  # numbers stay numbers
