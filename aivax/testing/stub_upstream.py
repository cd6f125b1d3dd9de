"""A small, scriptable OpenAI-compatible upstream for tests and benchmarks (raw ASGI under uvicorn, loopback).

By default it answers "Echo: <last user message>", streamed as one chunk per word, with usage. A script set per
upstream model name changes that: content, chunk delay, tool calls, an HTTP error, a hang, no usage, cached
tokens. Every request body is recorded; streams the client abandoned are counted as cancelled.

It also speaks OpenAI's Responses API at /responses (the same scripts; semantic events when streaming), for
upstreams set to `wire_api = "responses"`; those requests are recorded with `_path: "/responses"`.

    python -m aivax.testing.stub_upstream --port 9100   # for benchmarks
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class Script:
    content: str | None = None  # None: echo the last user message
    chunk_delay: float = 0.0
    first_chunk_delay: float = 0.0
    tool_calls: list[dict[str, Any]] | None = None
    status: int = 200
    error_message: str = "upstream exploded"
    fail_times: int | None = None  # fail with `status` this many times, then succeed
    hang: bool = False
    usage: bool = True
    cached_tokens: int = 0
    break_after_chunks: int | None = None  # stream: drop the connection after N chunks
    stall_after_chunks: int | None = None  # stream: stop sending (connection open) after N chunks
    retry_after: str | None = None  # Retry-After header on the scripted error
    finish_reason: str = "stop"
    answer_after_tool: bool = False  # once a tool result is in the conversation, answer in text instead of calling
    endless: bool = False  # generate as long as allowed (max_completion_tokens / max_tokens, else 100,000 words)
    reasoning_tokens: int = 0  # reported in usage.completion_tokens_details (and counted in completion_tokens)
    cumulative_usage: bool = False  # stream: a running usage object on every chunk (some providers do)
    stream_error: dict[str, Any] | None = None  # stream: send {"error": this} after `stream_error_after` chunks
    stream_error_after: int = 0
    # Per-message answers: the first key found in the last user message picks the content (a router's classifier).
    replies: dict[str, str] | None = None


def _last_tool_result(body: dict[str, Any]) -> str | None:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "tool":
            return str(message.get("content") or "")
    return None


@dataclass
class StubState:
    scripts: dict[str, Script] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    cancelled: int = 0
    completed_streams: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


def _words(text: str) -> list[str]:
    parts = text.split(" ")
    return [p if i == 0 else " " + p for i, p in enumerate(parts)]


class StubUpstream:
    def __init__(self, default: Script | None = None) -> None:
        self.state = StubState()
        self.default = default or Script()  # for models without a script of their own

    # -- test helpers ----------------------------------------------------------------------------------------
    def script(self, model: str, **kwargs: Any) -> Script:
        script = Script(**kwargs)
        with self.state.lock:
            self.state.scripts[model] = script
            self.state.failures.pop(model, None)
        return script

    def requests_for(self, model: str) -> list[dict[str, Any]]:
        with self.state.lock:
            return [r for r in self.state.requests if r.get("model") == model]

    # -- ASGI ------------------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"].rstrip("/")
        if scope["method"] == "GET" and path.endswith("/models"):
            await self._json(send, 200, {"object": "list", "data": [{"id": "stub", "object": "model"}]})
            return
        if scope["method"] == "POST" and path.endswith("/responses"):
            await self._responses(scope, receive, send)
            return
        if not path.endswith("/chat/completions"):
            await self._json(send, 404, {"error": {"message": "not found"}})
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        body = json.loads(raw or b"{}")
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        model = str(body.get("model", ""))
        with self.state.lock:
            self.state.requests.append({**body, "_authorization": headers.get("authorization")})
            script = self.state.scripts.get(model, self.default)
            failed = self.state.failures.get(model, 0)
            should_fail = script.status != 200 and (script.fail_times is None or failed < script.fail_times)
            if should_fail:
                self.state.failures[model] = failed + 1
        if script.hang:
            await self._wait_for_disconnect(receive)
            return
        if should_fail:
            extra = [(b"retry-after", script.retry_after.encode())] if script.retry_after else []
            error = {"error": {"message": script.error_message, "type": "server"}}
            await self._json(send, script.status, error, extra)
            return
        content = script.content if script.content is not None else f"Echo: {_last_user_text(body)}"
        for key, reply in (script.replies or {}).items():
            if key in _last_user_text(body):
                content = reply
                break
        tool_result = _last_tool_result(body) if script.answer_after_tool else None
        if tool_result is not None:
            script = Script(**{**script.__dict__, "tool_calls": None})
            content = f"From the tool: {' '.join(tool_result.split())[:1000]}"
        prompt_tokens = sum(len(str(m.get("content", "")).split()) + 3 for m in body.get("messages", []))
        # The answer's cap is honoured like a real model: one word is one token, and the reasoning counts too.
        cap = body.get("max_completion_tokens") or body.get("max_tokens")
        budget = (int(cap) if cap else 100_000) - script.reasoning_tokens
        if script.endless:
            content = " ".join(["word"] * (max(budget, 0) + 1))  # always more than allowed: cut at the cap
        pieces = _words(content) if content else []
        if len(pieces) > max(budget, 0):
            pieces = pieces[: max(budget, 0)]
            content = "".join(pieces)
            script = Script(**{**script.__dict__, "finish_reason": "length", "tool_calls": None})
        completion_tokens = len(pieces) + (1 if script.tool_calls else 0) + script.reasoning_tokens
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": script.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": script.reasoning_tokens},
        }
        if body.get("stream"):
            await self._stream(send, receive, body, script, pieces, usage)
        else:
            if script.first_chunk_delay:
                await asyncio.sleep(script.first_chunk_delay)
            message_out: dict[str, Any] = {"role": "assistant", "content": content if pieces else None}
            if script.tool_calls:
                message_out["tool_calls"] = script.tool_calls
            answer = {
                "id": "chatcmpl-stub",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "message": message_out, "finish_reason": script.finish_reason}],
            }
            if script.usage:
                answer["usage"] = usage
            await self._json(send, 200, answer)

    async def _stream(
        self,
        send: Send,
        receive: Receive,
        body: dict[str, Any],
        script: Script,
        pieces: list[str],
        usage: dict[str, Any],
    ) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        disconnected = asyncio.Event()

        async def watch() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    disconnected.set()
                    return

        watcher = asyncio.create_task(watch())
        base = {
            "id": "chatcmpl-stub",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model"),
        }

        async def event(payload: dict[str, Any]) -> None:
            await send(
                {
                    "type": "http.response.body",
                    "body": b"data: " + json.dumps(payload).encode() + b"\n\n",
                    "more_body": True,
                }
            )

        try:
            if script.first_chunk_delay:
                await asyncio.wait_for(disconnected.wait(), script.first_chunk_delay)
                raise ConnectionResetError
        except TimeoutError:
            pass
        try:
            await event(
                {
                    **base,
                    "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
                }
            )
            for index, piece in enumerate(pieces):
                if script.break_after_chunks is not None and index >= script.break_after_chunks:
                    raise ConnectionAbortedError
                if script.stall_after_chunks is not None and index >= script.stall_after_chunks:
                    await disconnected.wait()
                    raise ConnectionResetError
                if script.stream_error is not None and index >= script.stream_error_after:
                    await event({"error": script.stream_error})
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    return
                if script.chunk_delay:
                    try:
                        await asyncio.wait_for(disconnected.wait(), script.chunk_delay)
                        raise ConnectionResetError
                    except TimeoutError:
                        pass
                if disconnected.is_set():
                    raise ConnectionResetError
                running = {"usage": {**usage, "completion_tokens": index + 1}} if script.cumulative_usage else {}
                await event(
                    {**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}], **running}
                )
            if script.tool_calls:
                calls = [{"index": i, **call} for i, call in enumerate(script.tool_calls)]
                await event({**base, "choices": [{"index": 0, "delta": {"tool_calls": calls}, "finish_reason": None}]})
            finish = "tool_calls" if script.tool_calls else script.finish_reason
            running = {"usage": usage} if script.cumulative_usage else {}
            await event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}], **running})
            if script.usage and (body.get("stream_options") or {}).get("include_usage"):
                await event({**base, "choices": [], "usage": usage})
            await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})
            with self.state.lock:
                self.state.completed_streams += 1
        except ConnectionAbortedError:
            raise  # uvicorn drops the connection mid-body, as a crashing upstream would
        except (ConnectionResetError, OSError):
            with self.state.lock:
                self.state.cancelled += 1
        finally:
            watcher.cancel()

    # -- the Responses API ------------------------------------------------------------------------------------
    async def _responses(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        body = json.loads(raw or b"{}")
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        model = str(body.get("model", ""))
        with self.state.lock:
            self.state.requests.append({**body, "_path": "/responses", "_authorization": headers.get("authorization")})
            script = self.state.scripts.get(model, Script())
            failed = self.state.failures.get(model, 0)
            should_fail = script.status != 200 and (script.fail_times is None or failed < script.fail_times)
            if should_fail:
                self.state.failures[model] = failed + 1
        if should_fail:
            await self._json(send, script.status, {"error": {"message": script.error_message, "type": "server"}})
            return
        items = [{"role": "user", "content": body["input"]}] if isinstance(body.get("input"), str) else body["input"]
        content = script.content if script.content is not None else f"Echo: {_last_user_text({'messages': items})}"
        tool_calls = script.tool_calls
        outputs = [str(i.get("output")) for i in items if i.get("type") == "function_call_output"]
        if script.answer_after_tool and outputs:
            content, tool_calls = f"From the tool: {' '.join(outputs[-1].split())[:1000]}", None
        pieces = _words(content) if content else []
        input_tokens = sum(len(str(i.get("content", i.get("output", ""))).split()) + 3 for i in items)
        output_tokens = len(pieces) + (1 if tool_calls else 0)
        usage = {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": script.cached_tokens},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        }
        text_part = {"type": "output_text", "text": "".join(pieces), "annotations": []}
        output: list[dict[str, Any]] = []
        if pieces:
            message = {"id": "msg_stub", "type": "message", "role": "assistant", "status": "completed"}
            output.append({**message, "content": [text_part]})
        for index, call in enumerate(tool_calls or []):
            function = call["function"]
            output.append(
                {
                    "id": f"fc_stub{index}",
                    "type": "function_call",
                    "status": "completed",
                    "call_id": call["id"],
                    "name": function["name"],
                    "arguments": function["arguments"],
                }
            )
        incomplete = script.finish_reason == "length"
        response = {
            "id": "resp_stub",
            "object": "response",
            "created_at": int(time.time()),
            "model": model,
            "status": "incomplete" if incomplete else "completed",
            "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
            "output": output,
            "usage": usage if script.usage else None,
        }
        if not body.get("stream"):
            await self._json(send, 200, response)
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        sequence = 0

        async def event(kind: str, **fields: Any) -> None:
            nonlocal sequence
            payload = {"type": kind, "sequence_number": sequence, **fields}
            sequence += 1
            data = f"event: {kind}\ndata: {json.dumps(payload)}\n\n".encode()
            await send({"type": "http.response.body", "body": data, "more_body": True})

        try:
            await event("response.created", response={**response, "status": "in_progress", "output": []})
            for index, item in enumerate(output):
                if item["type"] == "message":
                    await event("response.output_item.added", output_index=index, item={**item, "content": []})
                    empty = {**text_part, "text": ""}
                    await event("response.content_part.added", output_index=index, content_index=0, part=empty)
                    for count, piece in enumerate(pieces):
                        if script.break_after_chunks is not None and count >= script.break_after_chunks:
                            raise ConnectionAbortedError
                        if script.chunk_delay:
                            await asyncio.sleep(script.chunk_delay)
                        await event("response.output_text.delta", output_index=index, content_index=0, delta=piece)
                    await event("response.output_text.done", output_index=index, content_index=0, text=content)
                    await event("response.content_part.done", output_index=index, content_index=0, part=text_part)
                else:
                    await event("response.output_item.added", output_index=index, item={**item, "arguments": ""})
                    args = item["arguments"]
                    await event("response.function_call_arguments.delta", output_index=index, delta=args)
                    await event("response.function_call_arguments.done", output_index=index, arguments=args)
                await event("response.output_item.done", output_index=index, item=item)
            await event("response.incomplete" if incomplete else "response.completed", response=response)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except ConnectionAbortedError:
            raise  # uvicorn drops the connection mid-body, as a crashing upstream would

    async def _wait_for_disconnect(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                with self.state.lock:
                    self.state.cancelled += 1
                return

    async def _json(
        self, send: Send, status: int, payload: dict[str, Any], extra: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
        await send({"type": "http.response.body", "body": data})


class StubServer:
    """The stub under uvicorn in a background thread."""

    def __init__(self, port: int = 0) -> None:
        import socket

        import uvicorn

        if port == 0:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
        self.app = StubUpstream()
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}/v1"
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="error", lifespan="off")
        )
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), daemon=True)

    def start(self) -> StubServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("stub upstream did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between streamed words")
    parser.add_argument("--content", default=None, help="the answer (default: echo the last user message)")
    args = parser.parse_args()
    default = Script(chunk_delay=args.chunk_delay, content=args.content)
    app = StubUpstream(default)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="error", lifespan="off", access_log=False)


if __name__ == "__main__":
    main()
