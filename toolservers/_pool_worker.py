"""A stdio pool worker: started warm, takes one dialogue's assignment, serves it over its pipes.

Run as ``python -m toolservers._pool_worker ENVIRONMENT_FILE...`` (the files are imported
and checked ahead, to warm the caches). The protocol before MCP starts on the same pipes is
three JSON lines: the worker says ``{"ready": PID}``; the parent sends the assignment; the
worker answers ``{"ok": true}`` or ``{"error": "..."}``.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp
import msgspec
from anyio.abc import SocketListener
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage

from schemas import Environment
from toolservers._framing import serve_sessions
from toolservers._stdio import _EventWriter
from toolservers.database import DEFAULT_CALL_TIMEOUT_S
from toolservers.loader import load_environment
from toolservers.server import ToolServer, build_tool_server

logger = logging.getLogger(f"dialogsim.{__name__}")

__all__ = ["Answer", "Assignment", "worker_main"]


class Assignment(msgspec.Struct, forbid_unknown_fields=True):
    environment: str
    database: str
    dialogue_id: str = ""
    events: str | None = None
    sessions: str | None = None
    call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S


class Answer(msgspec.Struct):
    ready: int | None = None
    ok: bool = False
    error: str | None = None


def _read_line_fd(fd: int) -> bytes:
    """One line from a raw descriptor, reading nothing past it (MCP follows on the same pipe)."""
    data = bytearray()
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            break
        data += chunk
    return bytes(data)


def _say(fd: int, answer: dict[str, Any]) -> None:
    os.write(fd, msgspec.json.encode(answer) + b"\n")


#: Environments a worker loaded and exercised before announcing readiness, by file.
_PRELOADED: dict[str, Environment] = {}


def _warm(files: list[str]) -> None:
    """Load the environments a worker may serve, build their servers once and rehearse a session.

    Building a server checks every tool's schema against the JSON Schema metaschema and
    compiles its validators; those results are cached by content. The rehearsal runs the
    first event loop of the process (which imports the event loop's backend, ~15 ms) and
    one MCP session over memory streams, the JSON-RPC path a stdio session takes, so the
    SDK's lazily built parts are built. Doing both here, before the worker is on offer,
    takes that cost off the dialogue that gets the worker.
    Best effort: an environment that fails here fails properly when assigned.
    """
    servers = []
    for file in files:
        try:
            environment = load_environment(Path(file))
            _PRELOADED[file] = environment
            servers.append(build_tool_server(environment, source=f"environment {environment.id!r}"))
        except Exception:
            logger.debug("warming %s failed", file, exc_info=True)
    try:
        anyio.run(_rehearse, servers)
    except Exception:
        logger.debug("the warm-up session failed", exc_info=True)
    finally:
        for server in servers:
            server.close()


@asynccontextmanager
async def _streams(reads: Any, writes: Any) -> AsyncIterator[tuple[Any, Any]]:
    """A client transport over two memory object streams."""
    yield reads, writes


async def _rehearse(servers: list[ToolServer]) -> list[int]:
    """One MCP session per server over memory streams: initialize, list the tools, one refused call.

    Returns how many tools each session listed.
    """
    listed: list[int] = []
    for tool_server in servers:
        to_server, server_reads = anyio.create_memory_object_stream[SessionMessage | Exception](1)
        to_client, client_reads = anyio.create_memory_object_stream[SessionMessage](1)
        server = tool_server.server
        options = server.create_initialization_options()
        async with anyio.create_task_group() as tg:
            tg.start_soon(functools.partial(server.run, server_reads, to_client, options))
            async with mcp.Client(_streams(client_reads, to_server)) as client:
                tools = (await client.list_tools()).tools
                if tools:
                    await client.call_tool(tools[0].name, {"__warm_up__": True})
                listed.append(len(tools))
            tg.cancel_scope.cancel()
    return listed


def worker_main(argv: list[str]) -> int:
    """A pool worker: warm up, announce readiness, wait for one assignment, serve it over stdio."""
    _warm(argv)
    _say(1, {"ready": os.getpid()})
    line = _read_line_fd(0)
    if not line.strip():
        return 0  # the pool closed without using this worker
    try:
        assignment = msgspec.json.decode(line, type=Assignment)
    except msgspec.DecodeError as exc:
        _say(1, {"error": f"bad assignment: {exc}"})
        return 2
    return anyio.run(_worker_serve, assignment)


async def _worker_serve(assignment: Assignment) -> int:
    try:
        environment = _PRELOADED.get(assignment.environment) or load_environment(Path(assignment.environment))
        tool_server = build_tool_server(
            environment,
            database=Path(assignment.database),
            in_place=True,
            dialogue_id=assignment.dialogue_id,
            source=f"environment {environment.id!r}",
            call_timeout_s=assignment.call_timeout_s,
        )
    except Exception as exc:
        _say(1, {"error": f"{type(exc).__name__}: {exc}"})
        return 2
    try:
        async with AsyncExitStack() as stack:
            listener: SocketListener | None = None
            try:
                if assignment.events is not None:
                    events = await anyio.connect_unix(assignment.events)
                    await stack.enter_async_context(events)
                    tool_server.on_event = tool_server.on_protocol_error = _EventWriter(events)
                if assignment.sessions is not None:
                    listener = await anyio.create_unix_listener(assignment.sessions)
                    await stack.enter_async_context(listener)
            except OSError as exc:
                _say(1, {"error": f"cannot open the worker's sockets: {exc.strerror or exc}"})
                return 2
            _say(1, {"ok": True})
            server = tool_server.server
            async with anyio.create_task_group() as tg:
                if listener is not None:
                    tg.start_soon(serve_sessions, server, listener)
                async with stdio_server() as (read_stream, write_stream):
                    await server.run(read_stream, write_stream, server.create_initialization_options())
                tg.cancel_scope.cancel()
    finally:
        tool_server.close()
    return 0


if __name__ == "__main__":
    code = worker_main(sys.argv[1:])
    sys.stderr.flush()
    # Everything is committed, closed and flushed by now: skip the interpreter's teardown
    # of the MCP SDK's modules, which would delay the end of the dialogue it served.
    os._exit(code)
