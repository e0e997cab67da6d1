"""MCP over any byte stream, and the stdio command that relays an agent to a served socket.

``mcp_streams`` turns a pair of byte streams (a process's pipes, a unix socket) into the
MCP client/server transport; ``serve_sessions`` serves one MCP server to every connection
on a listener; ``relay_command`` is the stdio command an outside agent launches to reach
such a listener.
"""

from __future__ import annotations

import logging
import shlex
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple

import anyio
import mcp_types as types
from anyio.abc import ByteReceiveStream, ByteSendStream, SocketListener, SocketStream
from mcp.client._transport import TransportStreams
from mcp.server import Server
from mcp.shared.message import SessionMessage

logger = logging.getLogger(f"dialogsim.{__name__}")

__all__ = ["LineReader", "StdioCommand", "mcp_streams", "relay_command", "serve_sessions"]

_RELAY = Path(__file__).resolve().with_name("_relay.py")


class StdioCommand(NamedTuple):
    """A command that speaks MCP on its stdin/stdout, for agents that spawn their server."""

    command: str
    args: list[str]

    @property
    def shell(self) -> str:
        """The command as one shell-quoted line."""
        return shlex.join([self.command, *self.args])


def relay_command(socket_path: Path) -> StdioCommand:
    """The stdio command that relays to the MCP sessions served on ``socket_path``.

    It is a standard-library-only script run with ``-I -S``: it starts in milliseconds.
    """
    return StdioCommand(sys.executable, ["-I", "-S", str(_RELAY), str(socket_path)])


# --------------------------------------------------------------------------- MCP over bytes


class LineReader:
    """Newline-delimited frames from a byte stream; what is left after a line stays buffered."""

    def __init__(self, stream: ByteReceiveStream) -> None:
        self._stream = stream
        self._buffer = bytearray()
        self._scanned = 0

    async def readline(self) -> bytes | None:
        """The next line without its newline, or None at the end of the stream."""
        while True:
            at = self._buffer.find(b"\n", self._scanned)
            if at >= 0:
                line = bytes(self._buffer[:at])
                del self._buffer[: at + 1]
                self._scanned = 0
                return line
            self._scanned = len(self._buffer)
            try:
                chunk = await self._stream.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                return None
            self._buffer += chunk


@asynccontextmanager
async def mcp_streams(reader: LineReader | ByteReceiveStream, send: ByteSendStream) -> AsyncIterator[TransportStreams]:
    """MCP message streams over a byte stream of newline-delimited JSON-RPC (the stdio framing).

    Yields ``(read_stream, write_stream)`` as a client transport or ``Server.run`` expects.
    A line that is not a JSON-RPC message arrives on the read stream as the exception.
    On exit, messages already written are flushed (briefly bounded) before the pumps stop.
    """
    lines = reader if isinstance(reader, LineReader) else LineReader(reader)
    read_send, read_receive = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_send, write_receive = anyio.create_memory_object_stream[SessionMessage](0)
    flushed = anyio.Event()

    async def inbound() -> None:
        async with read_send:
            while (line := await lines.readline()) is not None:
                if not line.strip():
                    continue
                item: SessionMessage | Exception
                try:
                    item = SessionMessage(types.jsonrpc_message_adapter.validate_json(line, by_name=False))
                except ValueError as exc:
                    item = exc
                try:
                    await read_send.send(item)
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                    return

    async def outbound() -> None:
        try:
            async with write_receive:
                async for message in write_receive:
                    data = message.message.model_dump_json(by_alias=True, exclude_unset=True).encode() + b"\n"
                    try:
                        await send.send(data)
                    except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
                        return
        finally:
            flushed.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(inbound)
        tg.start_soon(outbound)
        try:
            yield read_receive, write_send
        finally:
            write_send.close()
            with anyio.CancelScope(shield=True), anyio.move_on_after(1.0):
                await flushed.wait()
            tg.cancel_scope.cancel()
            read_receive.close()


async def serve_sessions(server: Server[Any], listener: SocketListener) -> None:
    """Serve one MCP session of ``server`` per connection ``listener`` accepts, until cancelled.

    A session that breaks is logged and closed; the others and the listener go on.
    """

    async def session(stream: SocketStream) -> None:
        async with stream:
            try:
                async with mcp_streams(stream, stream) as (read_stream, write_stream):
                    await server.run(read_stream, write_stream, server.create_initialization_options())
            except Exception:
                logger.exception("an MCP session over a unix socket failed")

    await listener.serve(session)
