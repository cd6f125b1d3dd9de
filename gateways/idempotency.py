"""Idempotent inference requests: an `Idempotency-Key` header (Stripe's convention) or an `idempotency_key` body
field (AIVAX's) makes a retry return the first response instead of running (and billing) again.

- The first request with a key claims it (one `INSERT ... ON CONFLICT DO NOTHING` in PostgreSQL, scoped per
  organization) and runs; its response is stored when it ends: the JSON body, or every SSE frame of a stream.
- The same key with the same body within 24 hours replays it (`Idempotent-Replayed: true`); a stream is replayed
  as a stream. A retry that arrives while the first still runs waits for it, then replays: two concurrent
  requests with one key run once.
- The same key with a different body is a 422 (`idempotency_key_reused`).
- A stream with a key is detached from its client: if the client drops (the reason it retries), the answer is
  still read to its end, billed once and stored, so the retry gets all of it.
- A request that fails before answering (an error status) frees its key: the retry runs afresh.

Crash safety: a process that dies mid-request leaves a claimed, unfinished key; after the longest a request may
run it counts as abandoned and the next retry runs again (if the crash fell between the ledger write and storing
the response, that retry is billed again: the one window, as narrow as one statement).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import orjson
from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone

from aivax import adb
from aivax.errors import Conflict, InvalidRequest
from gateways import protocol
from gateways.relay import in_background

HEADER = "Idempotency-Key"
BODY_FIELD = "idempotency_key"
TTL = timedelta(hours=24)
POLL_SECONDS = 0.05
_KEPT_HEADERS = ("x-request-id", "x-aivax-gateway", "x-aivax-ignored-params", "x-aivax-truncated-messages")

_CLAIM = """
INSERT INTO billing_idempotentrequest
    (organization_id, key, body_hash, request_id, done, streamed, headers, created_at)
VALUES (%(org)s, %(key)s, %(hash)s, %(request_id)s, false, false, '{}', %(now)s)
ON CONFLICT (organization_id, key) DO UPDATE SET
    body_hash = EXCLUDED.body_hash, request_id = EXCLUDED.request_id, done = false, status = NULL,
    streamed = false, response = NULL, headers = '{}', created_at = EXCLUDED.created_at
WHERE billing_idempotentrequest.created_at < %(expired)s
   OR (NOT billing_idempotentrequest.done AND billing_idempotentrequest.created_at < %(abandoned)s)
RETURNING id
"""
_READ = """
SELECT id, body_hash, done, status, streamed, response, headers FROM billing_idempotentrequest
WHERE organization_id = %s AND key = %s
"""
_STORE = """
UPDATE billing_idempotentrequest SET done = true, status = %s, streamed = %s, response = %s, headers = %s
WHERE id = %s
"""
_FREE = "DELETE FROM billing_idempotentrequest WHERE id = %s AND NOT done"

Run = Callable[[str], Awaitable[HttpResponse]]


def key_of(header: str | None, body_value: Any) -> str | None:
    """The request's idempotency key (the header wins), validated; None without one."""
    value = header if header is not None else body_value
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 255 or not value.isprintable():
        raise InvalidRequest(
            "An idempotency key is a string of 1 to 255 printable characters.",
            param=BODY_FIELD,
            code="invalid_idempotency_key",
        )
    return value


def body_hash(body: dict[str, Any]) -> str:
    """The request as sent, whitespace and key order aside, without the key itself."""
    canonical = {k: v for k, v in body.items() if k != BODY_FIELD}
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _longest_request() -> timedelta:
    return timedelta(seconds=float(settings.UPSTREAM_TOTAL_TIMEOUT) + 60)


async def _claim(organization_id: int, key: str, digest: str, request_id: str) -> int | None:
    now = timezone.now()
    row = await adb.fetchone(
        _CLAIM,
        {  # type: ignore[arg-type]
            "org": organization_id,
            "key": key,
            "hash": digest,
            "request_id": request_id,
            "now": now,
            "expired": now - TTL,
            "abandoned": now - _longest_request(),
        },
    )
    return int(row[0]) if row else None


def _replay(status: int, streamed: bool, stored: bytes, headers: dict[str, str]) -> HttpResponse:
    response: HttpResponse | StreamingHttpResponse
    if streamed:

        async def frames() -> AsyncIterator[bytes]:
            for frame in stored.split(b"\n\n"):
                if frame:
                    yield frame + b"\n\n"

        response = StreamingHttpResponse(frames(), status=status, content_type="text/event-stream")
        for name, value in protocol.SSE_HEADERS.items():
            response[name] = value
    else:
        response = HttpResponse(stored, status=status, content_type="application/json")
    for name, value in headers.items():
        response[name] = value
    response["Idempotent-Replayed"] = "true"
    return response  # type: ignore[return-value]


async def _store(row_id: int, status: int, streamed: bool, content: bytes, response: HttpResponse) -> None:
    headers = {name: response[name] for name in _KEPT_HEADERS if response.has_header(name)}
    await adb.fetchone(_STORE, [status, streamed, content, json.dumps(headers), row_id])


def _recorded(row_id: int, response: StreamingHttpResponse) -> AsyncIterator[bytes]:
    """The stream, read by its own task into a queue: a client that leaves stops reading, not the stream, which
    runs to its end (billed as usual) and is stored for the retry."""
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()
    source = response.streaming_content

    async def pump() -> None:
        frames: list[bytes] = []
        try:
            async for frame in source:  # type: ignore[union-attr]
                frame = bytes(frame)
                frames.append(frame)
                queue.put_nowait(frame)
        finally:
            queue.put_nowait(None)
            if frames:
                await _store(row_id, response.status_code, True, b"".join(frames), response)
            else:
                await adb.fetchone(_FREE, [row_id])

    in_background(pump())

    async def relay() -> AsyncIterator[bytes]:
        while (frame := await queue.get()) is not None:
            yield frame

    return relay()


async def once(*, organization_id: int, key: str, digest: str, run: Run) -> HttpResponse:
    """Run `run(request_id)` once per (organization, key) and body; replay its response to retries."""
    deadline = asyncio.get_running_loop().time() + _longest_request().total_seconds()
    while True:
        request_id = protocol.new_completion_id()
        row_id = await _claim(organization_id, key, digest, request_id)
        if row_id is not None:
            return await _run_claimed(row_id, request_id, run)
        row = await adb.fetchone(_READ, [organization_id, key])
        if row is None:
            continue  # freed between our claim and our read: claim again
        _id, stored_hash, done, status, streamed, stored, headers = row
        if stored_hash != digest:
            raise InvalidRequest(
                "This idempotency key was already used with a different request body.",
                param=BODY_FIELD,
                code="idempotency_key_reused",
                status=422,
            )
        if done:
            return _replay(status, streamed, bytes(stored or b""), headers or {})
        if asyncio.get_running_loop().time() > deadline:
            raise Conflict("A request with this idempotency key is still running.", code="idempotency_key_in_use")
        await asyncio.sleep(POLL_SECONDS)  # the first request is still running: wait for its answer


async def _run_claimed(row_id: int, request_id: str, run: Run) -> HttpResponse:
    try:
        response = await run(request_id)
    except BaseException:
        await asyncio.shield(in_background(adb.fetchone(_FREE, [row_id])))
        raise
    if isinstance(response, StreamingHttpResponse):
        response.streaming_content = _recorded(row_id, response)
        return response
    if response.status_code >= 400:
        await adb.fetchone(_FREE, [row_id])  # nothing was answered: the retry runs afresh
        return response
    await _store(row_id, response.status_code, False, response.content, response)
    return response
