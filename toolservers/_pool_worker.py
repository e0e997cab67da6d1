"""A stdio pool worker: started warm, takes one dialogue's assignment, serves it over its pipes.

Run as ``python -m toolservers._pool_worker ENVIRONMENT_FILE...`` (the files are imported
and checked ahead, to warm the caches). The protocol before MCP starts on the same pipes is
three JSON lines: the worker says ``{"ready": PID}``; the parent sends the assignment; the
worker answers ``{"ok": true}`` or ``{"error": "..."}``.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import msgspec
from anyio.abc import SocketListener
from mcp.server.stdio import stdio_server

from schemas import Environment
from toolservers._framing import serve_sessions
from toolservers._stdio import _EventWriter
from toolservers.database import DEFAULT_CALL_TIMEOUT_S
from toolservers.loader import load_environment
from toolservers.server import build_tool_server

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
    """Load the environments a worker may serve and build their servers once.

    Building a server checks every tool's schema against the JSON Schema metaschema and
    compiles its validators; those results are cached by content, so doing it here, before
    the worker is on offer, takes that cost off the dialogue that gets the worker.
    Best effort: an environment that fails here fails properly when assigned.
    """
    for file in files:
        try:
            environment = load_environment(Path(file))
            _PRELOADED[file] = environment
            build_tool_server(environment, source=f"environment {environment.id!r}").close()
        except Exception:
            logger.debug("warming %s failed", file, exc_info=True)


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
