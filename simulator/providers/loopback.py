"""A scripted loopback HTTP/1.1 server that speaks the two provider protocols, for tests and benchmarks.

The official SDKs talk to it through ``base_url`` exactly as they talk to the real
APIs: ``POST /v1/messages`` (Anthropic) and ``POST /v1/chat/completions`` (OpenAI and
compatible servers). Each request is answered by a handler, usually a :class:`Script`
of :class:`Reply` values in order. A reply can carry any status, headers and body,
wait for an event (to hold requests in flight or outlast a client timeout), or be cut
off mid-body. The server records every request it received.

Built on anyio sockets and h11 (no threads); it runs inside the caller's event loop::

    async with serve_loopback(Script(Reply(body=openai_completion("hi")))) as server:
        ...  # point a client at server.openai_base_url
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import h11

__all__ = [
    "LoopbackServer",
    "Received",
    "Reply",
    "Script",
    "anthropic_error",
    "anthropic_message",
    "openai_completion",
    "openai_error",
    "serve_loopback",
]


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the server read it; ``headers`` have lowercase names."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(slots=True)
class Reply:
    """How to answer one request.

    ``body`` is sent as JSON unless ``raw`` gives the exact bytes. ``hold`` makes the
    server wait for the event before answering, ``delay`` for that many seconds.
    ``truncate`` declares the full ``content-length``, sends half the body and closes
    the connection.
    """

    status: int = 200
    body: Any = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    hold: anyio.Event | None = None
    delay: float = 0.0
    truncate: bool = False


Handler = Callable[[Received], Awaitable[Reply]]


class Script:
    """Answers requests with the given replies in order (a callable is called with the request).

    When the replies run out it answers 418 so a test fails loudly instead of hanging.
    """

    def __init__(self, *replies: Reply | Callable[[Received], Reply]) -> None:
        self._replies = list(replies)
        self.used = 0

    @property
    def remaining(self) -> int:
        return len(self._replies) - self.used

    async def __call__(self, request: Received) -> Reply:
        if self.used >= len(self._replies):
            return Reply(status=418, body={"error": {"type": "script_exhausted", "message": "no reply scripted"}})
        item = self._replies[self.used]
        self.used += 1
        return item(request) if callable(item) else item


class LoopbackServer:
    """The running server: its address, what it received, and how many connections it accepted."""

    def __init__(self, handler: Handler, port: int) -> None:
        self.handler = handler
        self.port = port
        self.requests: list[Received] = []
        self.connections = 0
        self.in_flight = 0
        self.max_in_flight = 0

    @property
    def base_url(self) -> str:
        """The Anthropic SDK's base URL (it adds ``/v1/messages``)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """The OpenAI SDK's base URL (it adds ``/chat/completions``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def hits(self) -> int:
        return len(self.requests)

    async def _read(self, conn: h11.Connection, stream: anyio.abc.SocketStream) -> Received | None:
        request: h11.Request | None = None
        body = bytearray()
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError:
                return None
            if event is h11.NEED_DATA:
                try:
                    data = await stream.receive(65536)
                except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                    data = b""
                conn.receive_data(data)
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage) and request is not None:
                return Received(
                    method=request.method.decode(),
                    path=request.target.decode(),
                    headers={k.decode().lower(): v.decode() for k, v in request.headers},
                    body=bytes(body),
                )
            else:
                return None  # the client closed the connection (or paused it: we do not upgrade)

    async def _write(self, conn: h11.Connection, stream: anyio.abc.SocketStream, reply: Reply) -> bool:
        """Send ``reply``; False when the connection must be closed afterwards."""
        payload = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
        headers = [("content-type", "application/json"), ("content-length", str(len(payload)))]
        headers += [(k, v) for k, v in reply.headers.items() if k.lower() not in {"content-length", "content-type"}]
        try:
            await stream.send(conn.send(h11.Response(status_code=reply.status, headers=headers)) or b"")
            if reply.truncate:
                await stream.send(conn.send(h11.Data(data=payload[: len(payload) // 2])) or b"")
                return False
            await stream.send((conn.send(h11.Data(data=payload)) or b"") + (conn.send(h11.EndOfMessage()) or b""))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return False
        return True

    async def _connection(self, stream: anyio.abc.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        self.connections += 1
        async with stream:
            while True:
                received = await self._read(conn, stream)
                if received is None:
                    return
                self.requests.append(received)
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                try:
                    reply = await self.handler(received)
                    if reply.hold is not None:
                        await reply.hold.wait()
                    if reply.delay > 0:
                        await anyio.sleep(reply.delay)
                    keep = await self._write(conn, stream, reply)
                finally:
                    self.in_flight -= 1
                if not keep or conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()


@asynccontextmanager
async def serve_loopback(handler: Handler, *, port: int = 0) -> AsyncIterator[LoopbackServer]:
    """Serve ``handler`` on ``127.0.0.1`` (a free port unless given) until the block ends.

    Requests still being answered when the block ends are cancelled.
    """
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=port)
    bound = listener.extra(anyio.abc.SocketAttribute.local_port)
    server = LoopbackServer(handler, bound)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, server._connection, tg)
        try:
            yield server
        finally:
            tg.cancel_scope.cancel()


def anthropic_message(
    text: str = "",
    *,
    tool_calls: Sequence[tuple[str, str, dict[str, Any]]] = (),
    input_tokens: int = 10,
    output_tokens: int = 5,
    stop_reason: str | None = None,
    model: str = "claude-loopback",
    id: str = "msg_loopback",
) -> dict[str, Any]:
    """A Messages API reply body: text then ``tool_use`` blocks given as ``(id, name, input)``."""
    content: list[dict[str, Any]] = []
    if text:
        content.append({"type": "text", "text": text})
    content += [{"type": "tool_use", "id": i, "name": n, "input": a} for i, n, a in tool_calls]
    return {
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason or ("tool_use" if tool_calls else "end_turn"),
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


def openai_completion(
    text: str | None = None,
    *,
    tool_calls: Sequence[tuple[str, str, dict[str, Any] | str]] = (),
    prompt_tokens: int = 10,
    completion_tokens: int = 5,
    finish_reason: str | None = None,
    model: str = "loopback-model",
    id: str = "chatcmpl-loopback",
) -> dict[str, Any]:
    """A Chat Completions reply body; tool calls as ``(id, name, arguments)`` (a dict or raw text)."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_calls:
        message["tool_calls"] = [
            {
                "id": i,
                "type": "function",
                "function": {"name": n, "arguments": a if isinstance(a, str) else json.dumps(a)},
            }
            for i, n, a in tool_calls
        ]
    return {
        "id": id,
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop"),
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def anthropic_error(status: int, error_type: str, message: str, headers: dict[str, str] | None = None) -> Reply:
    """An Anthropic error reply (``{"type": "error", "error": {...}}``)."""
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    return Reply(status=status, body=body, headers=dict(headers or {}))


def openai_error(
    status: int, message: str, error_type: str = "server_error", headers: dict[str, str] | None = None
) -> Reply:
    """An OpenAI error reply (``{"error": {"message", "type", ...}}``)."""
    body = {"error": {"message": message, "type": error_type, "param": None, "code": None}}
    return Reply(status=status, body=body, headers=dict(headers or {}))
