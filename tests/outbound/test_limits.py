"""Upstream bodies are read within OUTBOUND_MAX_RESPONSE_BYTES: a whole body, or one line of a stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from aivax import outbound


def _response(*chunks: bytes) -> httpx.Response:
    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    return httpx.Response(200, content=body())


async def _lines(response: httpx.Response) -> list[str]:
    return [line async for line in outbound.aiter_lines_limited(response)]


def test_lines_across_chunks_match_httpx() -> None:
    chunks = (b'data: {"a"', b": 1}\r\n\r\nda", b"ta: [DO", b"NE]\n\n: keep\ralive\n", b"tail")

    async def both() -> tuple[list[str], list[str]]:
        ours = await _lines(_response(*chunks))
        theirs = [line async for line in _response(*chunks).aiter_lines()]
        return ours, theirs

    ours, theirs = asyncio.run(both())
    assert ours == theirs == ['data: {"a": 1}', "", "data: [DONE]", "", ": keep", "alive", "tail"]


def test_a_line_without_end_is_refused(settings) -> None:
    settings.OUTBOUND_MAX_RESPONSE_BYTES = 100
    ok = _response(b"x" * 60 + b"\n", b"y" * 60 + b"\n")
    assert asyncio.run(_lines(ok)) == ["x" * 60, "y" * 60]
    endless = _response(*([b"z" * 30] * 10))
    with pytest.raises(outbound.ResponseTooLarge):
        asyncio.run(_lines(endless))


def test_a_body_over_the_limit_is_refused(settings) -> None:
    settings.OUTBOUND_MAX_RESPONSE_BYTES = 100
    assert asyncio.run(outbound.aread_limited(_response(b"a" * 50, b"b" * 50))) == b"a" * 50 + b"b" * 50
    with pytest.raises(outbound.ResponseTooLarge):
        asyncio.run(outbound.aread_limited(_response(b"a" * 50, b"b" * 51)))
