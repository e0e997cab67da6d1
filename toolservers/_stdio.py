"""stdio: a tool server in a subprocess, its tool events sent back over a unix socket.

The subprocess (``dialogsim tools serve --transport stdio --events unix:PATH``) speaks MCP
on stdin/stdout, logs on stderr, and writes every ToolCall/ToolResult as one JSON line
to the unix socket the parent listens on; the parent decodes the lines and hands them to
its ``on_event`` callback, so calls served by a subprocess reach the dialogue's bus like
in-process ones.

The parent acknowledges each event (one byte) once its callback has returned, and the
subprocess waits for that before going on, as an in-process server awaits ``on_event``:
so a call's events have been handled before its result reaches the client, on every
transport. Calls to unknown tools travel the same way, as ErrorEvents, to
``on_protocol_error``.

``serve_stdio`` stops on SIGINT or SIGTERM (in the main thread), interrupting a
statement that is still running.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp
import msgspec
from anyio.abc import SocketListener, SocketStream
from mcp import StdioServerParameters
from mcp.server.stdio import stdio_server

from schemas import ErrorEvent, ToolEvent
from schemas.errors import ConfigError, ToolServerError
from toolservers.database import DEFAULT_CALL_TIMEOUT_S
from toolservers.loader import load_environment
from toolservers.server import EventCallback, ProtocolErrorCallback, ToolServer, build_tool_server

__all__ = ["serve_stdio", "stdio_tool_server", "stop_on_signals"]

logger = logging.getLogger(f"dialogsim.{__name__}")

_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[ToolEvent | ErrorEvent] = msgspec.json.Decoder(ToolEvent | ErrorEvent)
# After the subprocess exits its socket is closed; this only bounds a stuck on_event callback.
_DRAIN_TIMEOUT_S = 30.0


_ACK = b"+"


class _EventWriter:
    """The subprocess side: an ``on_event`` callback writing JSON lines to the parent's socket."""

    def __init__(self, stream: SocketStream) -> None:
        self._stream = stream
        # Calls are served concurrently; one event's line and its ack must not interleave
        # with another's.
        self._lock = anyio.Lock()

    async def __call__(self, event: ToolEvent | ErrorEvent) -> None:
        line = _encoder.encode(event) + b"\n"
        async with self._lock:
            await self._stream.send(line)
            if await self._stream.receive(1) != _ACK:
                raise ToolServerError("the events socket answered something other than an acknowledgement")


async def serve_stdio(tool_server: ToolServer, *, events: Path | None = None) -> None:
    """Serve ``tool_server`` over this process's stdin/stdout until stdin closes or a signal.

    With ``events``, connect to that unix socket first and write every tool event (and
    every protocol error) to it as one JSON line (``tool_server.on_event`` and
    ``on_protocol_error`` are replaced). Nothing but MCP messages is written to stdout.
    In the main thread, SIGINT and SIGTERM interrupt the statement running (if any) and
    end the serving; this then returns normally. Raises ConfigError when the socket
    cannot be reached.
    """
    async with AsyncExitStack() as stack:
        if events is not None:
            try:
                stream = await anyio.connect_unix(events)
            except OSError as exc:
                raise ConfigError(f"--events: cannot connect to unix:{events}: {exc.strerror or exc}") from None
            await stack.enter_async_context(stream)
            writer = _EventWriter(stream)
            tool_server.on_event = writer
            tool_server.on_protocol_error = writer
        async with anyio.create_task_group() as tg:
            if threading.current_thread() is threading.main_thread():
                tg.start_soon(stop_on_signals, tool_server, tg.cancel_scope)
            async with stdio_server(stdin=_stdin_lines()) as (read_stream, write_stream):
                server = tool_server.server
                await server.run(read_stream, write_stream, server.create_initialization_options())
            tg.cancel_scope.cancel()


class _PipeLines:
    """Lines from a pipe, read on the event loop.

    The SDK reads stdin in a worker thread that a cancellation must wait for, so a
    server whose client keeps stdin open could not stop on a signal; a pipe can be
    waited for on the loop instead.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = bytearray()
        self._eof = False

    def __aiter__(self) -> _PipeLines:
        return self

    async def __anext__(self) -> str:
        while True:
            at = self._buffer.find(b"\n")
            if at >= 0:
                line = bytes(self._buffer[: at + 1])
                del self._buffer[: at + 1]
                return line.decode("utf-8", "replace")
            if self._eof:
                if not self._buffer:
                    raise StopAsyncIteration
                rest = bytes(self._buffer)
                self._buffer.clear()
                return rest.decode("utf-8", "replace")
            await anyio.wait_readable(self._fd)
            chunk = os.read(self._fd, 65536)
            if chunk:
                self._buffer += chunk
            else:
                self._eof = True


def _stdin_lines() -> Any:
    """stdin for ``stdio_server``: read on the loop when it is a pipe or socket, else the SDK's own."""
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return None
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        return _PipeLines(0)
    return None  # a file or a terminal: the SDK's threaded reader


async def stop_on_signals(tool_server: ToolServer, scope: anyio.CancelScope) -> None:
    """On SIGINT or SIGTERM: interrupt the tool server's running statement and cancel ``scope``.

    A statement in a worker thread would otherwise hold the shutdown until its deadline.
    Must run in the main thread.
    """
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            logger.info("stopping on signal %s", signal.Signals(signum).name)
            tool_server.db.abort()
            scope.cancel()
            return


async def _receive_events(
    listener: SocketListener,
    on_event: EventCallback | None,
    dialogue_id: str,
    done: anyio.Event,
    *,
    on_protocol_error: ProtocolErrorCallback | None = None,
) -> None:
    """The parent side: accept the subprocess's connection, deliver its events until EOF."""
    try:
        stream = await listener.accept()
        async with stream:
            pending = b""
            while True:
                try:
                    chunk = await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    break
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    event = _decoder.decode(line)
                    if dialogue_id:
                        event.dialogue_id = dialogue_id
                    if isinstance(event, ErrorEvent):
                        if on_protocol_error is not None:
                            await on_protocol_error(event)
                    elif on_event is not None:
                        await on_event(event)
                    try:
                        await stream.send(_ACK)
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                        return  # the subprocess is gone; nothing more will come
    finally:
        done.set()


def _child_env() -> dict[str, str]:
    # The SDK passes only a few safe variables to the child; it still has to import us.
    root = str(Path(__file__).resolve().parent.parent)
    inherited = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": os.pathsep.join([root, inherited]) if inherited else root}


def serve_command(
    environment_path: Path,
    *,
    database: Path | None = None,
    in_place: bool = False,
    events: Path | None = None,
    call_timeout_s: float | None = None,
) -> StdioServerParameters:
    """The subprocess ``stdio_tool_server`` runs: this interpreter, ``-m simulator tools serve``."""
    args = ["-m", "simulator", "tools", "serve", "--environment", str(environment_path)]
    if database is not None:
        args += ["--database", str(database)]
    if in_place:
        args.append("--in-place")
    if call_timeout_s is not None:
        args += ["--call-timeout", repr(float(call_timeout_s))]
    args += ["--transport", "stdio"]
    if events is not None:
        args += ["--events", f"unix:{events}"]
    return StdioServerParameters(command=sys.executable, args=args, env=_child_env())


@asynccontextmanager
async def stdio_tool_server(
    environment_path: Path,
    *,
    database: Path | None = None,
    in_place: bool = False,
    on_event: EventCallback | None = None,
    dialogue_id: str = "",
    validate: bool = True,
    call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
    on_protocol_error: ProtocolErrorCallback | None = None,
) -> AsyncIterator[mcp.Client]:
    """Serve an environment file from a subprocess over stdio; yield a connected ``mcp.Client``.

    ``database`` and ``in_place`` mean what ``tools serve --database/--in-place`` mean.
    With ``validate`` the environment, database and tools are first checked in this
    process, so a bad file raises its ConfigError here instead of ending the subprocess.
    Each ToolCall/ToolResult the subprocess reports is awaited on ``on_event`` (its
    ``dialogue_id`` set to ``dialogue_id`` when given) before the subprocess answers the
    call, so a call's events have been handled when ``call_tool`` returns; when the block
    exits normally every event has been delivered. ``call_timeout_s`` is the subprocess's
    ``--call-timeout``; calls to unknown tools go to ``on_protocol_error``.
    """
    if validate:
        environment = load_environment(environment_path)
        build_tool_server(
            environment, base_dir=environment_path.parent, database=database, source=str(environment_path)
        ).close()
    if on_event is None and on_protocol_error is None:
        command = serve_command(environment_path, database=database, in_place=in_place, call_timeout_s=call_timeout_s)
        async with mcp.Client(command) as client:
            yield client
        return
    # Unix socket paths are limited to ~100 bytes: keep the directory short.
    tmp = Path(tempfile.mkdtemp(prefix="dialogsim-", dir="/tmp" if os.name == "posix" else None))
    try:
        sock_path = tmp / "events.sock"
        params = serve_command(
            environment_path, database=database, in_place=in_place, events=sock_path, call_timeout_s=call_timeout_s
        )
        done = anyio.Event()
        async with await anyio.create_unix_listener(sock_path) as listener, anyio.create_task_group() as tg:
            receive = functools.partial(_receive_events, on_protocol_error=on_protocol_error)
            tg.start_soon(receive, listener, on_event, dialogue_id, done)
            async with mcp.Client(params) as client:
                yield client
            # The subprocess has exited, which closed its end: the receiver reads to EOF.
            with anyio.fail_after(_DRAIN_TIMEOUT_S):
                await done.wait()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
