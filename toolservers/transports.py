"""One way to connect a dialogue to its tool server, whatever the transport.

``connect_tool_server`` is what the dialogue runner uses: it builds the dialogue's
private database and tool server, serves it in process, from a subprocess over stdio,
or over streamable HTTP on loopback, and yields a connected ``mcp.Client`` plus a
``Database`` for checking the outcome. The same tool events reach ``on_event`` on every
transport. The lower-level helpers (``stdio_tool_server``, ``http_tool_server``,
``http_client``) and the serving loops the command line runs (``serve_stdio``,
``serve_http``) are re-exported here.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import mcp
import mcp_types as types

from schemas import Environment
from schemas.errors import ConfigError
from toolservers._http import (
    HttpEndpoint,
    build_http_app,
    check_token,
    http_client,
    http_tool_server,
    is_loopback,
    new_token,
    serve_http,
)
from toolservers._listing import client_options, list_tools_once, remember_discover
from toolservers._stdio import serve_command, serve_stdio, stdio_tool_server
from toolservers.database import DEFAULT_CALL_TIMEOUT_S, Database
from toolservers.loader import save_environment
from toolservers.server import EventCallback, ProtocolErrorCallback, ToolServer, build_tool_server, database_file_for

__all__ = [
    "TRANSPORTS",
    "Connected",
    "HttpEndpoint",
    "TransportName",
    "build_http_app",
    "check_token",
    "connect_tool_server",
    "http_client",
    "http_tool_server",
    "is_loopback",
    "new_token",
    "serve_command",
    "serve_http",
    "serve_stdio",
    "stdio_tool_server",
]

TransportName = Literal["inprocess", "stdio", "http"]
TRANSPORTS: tuple[TransportName, ...] = get_args(TransportName)


@dataclass(eq=False)
class Connected:
    """A dialogue's tool server, connected.

    ``client`` is the connected ``mcp.Client`` to hand to the agent. ``database`` is the
    dialogue's database as this process sees it: for ``inprocess`` and ``http`` the tool
    server's own connection, for ``stdio`` a read-only connection to the file the
    subprocess changes in place. It may be read at any time; after ``finish()`` it holds
    the final state; it is closed when the block exits, so verify inside the block.
    ``tool_server`` is the in-process ToolServer, None for ``stdio``. ``environment`` is
    what is served; ``list_tools()`` lists its tools over MCP once per environment.
    """

    client: mcp.Client
    database: Database
    transport: TransportName
    tool_server: ToolServer | None
    _close: Callable[[], Awaitable[None]] = field(repr=False)
    environment: Environment | None = None

    async def list_tools(self) -> list[types.Tool]:
        """The server's tools. Listed over MCP for the first dialogue of an environment; later
        dialogues' clients get the same listing and the same checked output validators
        (``toolservers._listing``), so they validate results exactly as if they had listed.
        """
        if self.environment is None:
            return list((await self.client.list_tools()).tools)
        return await list_tools_once(self.client, self.environment)

    async def finish(self) -> Database:
        """End the session and return ``database`` with the final state.

        Closes the client, stops the HTTP server or the subprocess, and waits until every
        tool event has reached ``on_event``. Idempotent; the block's exit does it too.
        Call it from the task that entered ``connect_tool_server``.
        """
        await self._close()
        return self.database


@asynccontextmanager
async def connect_tool_server(
    environment: Environment,
    *,
    transport: TransportName = "inprocess",
    on_event: EventCallback | None = None,
    dialogue_id: str = "",
    base_dir: Path | None = None,
    database: Path | None = None,
    call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
    on_protocol_error: ProtocolErrorCallback | None = None,
) -> AsyncIterator[Connected]:
    """Serve ``environment`` to one dialogue over ``transport`` and yield it connected.

    Usage by the dialogue runner::

        async with connect_tool_server(env, transport="stdio", on_event=bus.publish,
                                       dialogue_id=dialogue_id) as conn:
            ...  # the agent calls tools through conn.client
            final = await conn.finish()  # every event delivered, final state readable
            check(final.snapshot())

    Each call opens a private copy of the environment's database (the DDL and seed rows,
    or the file ``environment.database.path`` relative to ``base_dir``, or ``database``
    instead); the source is never modified. Transports:

    - ``inprocess``: ``mcp.Client(tool_server.server)``, no serialisation; the fastest.
    - ``http``: the same tool server behind uvicorn on 127.0.0.1, a free port and a random
      bearer token, reached with an authenticated streamable HTTP client.
    - ``stdio``: the copy is written to a temporary file and served, changed in place, by
      ``python -m simulator tools serve --transport stdio``; its tool events come back
      over a unix socket. Everything temporary is removed when the block exits.

    ``on_event`` is awaited for every ToolCall and ToolResult, carrying ``dialogue_id``,
    before the call's result goes back to the client, on every transport. A call to a
    tool that does not exist is a JSON-RPC error (invalid params), not a tool call: it
    goes to ``on_protocol_error`` (an ErrorEvent), never to ``on_event``.
    ``call_timeout_s`` bounds each call's SQL (and each query on ``database``): past it
    the call is answered with an ``isError`` result whose code is ``timeout``.
    Raises ConfigError subclasses (DatabaseFileError, ToolDefinitionError) before
    connecting when the database or a tool is bad; errors while connected arrive as
    exception groups, as with any ``mcp.Client``.
    """
    if transport not in TRANSPORTS:
        raise ConfigError(f"unknown transport {transport!r}; expected one of: {', '.join(TRANSPORTS)}")
    source = f"environment {environment.id!r}"
    if transport == "stdio":
        served = _Served(on_event, on_protocol_error, dialogue_id, call_timeout_s)
        async with _connect_stdio(environment, served, base_dir, database, source) as conn:
            yield conn
        return
    tool_server = build_tool_server(
        environment,
        base_dir=base_dir,
        database=database,
        on_event=on_event,
        dialogue_id=dialogue_id,
        source=source,
        call_timeout_s=call_timeout_s,
        on_protocol_error=on_protocol_error,
    )
    try:
        async with AsyncExitStack() as stack:
            # Later clients of an environment reuse what its first client negotiated (_listing).
            options = client_options(environment, transport)
            if transport == "http":
                endpoint = await stack.enter_async_context(http_tool_server(tool_server))
                client = await stack.enter_async_context(http_client(endpoint.url, endpoint.token, **options))
            else:
                client = await stack.enter_async_context(mcp.Client(tool_server.server, **options))
            remember_discover(client, environment, transport)
            yield Connected(client, tool_server.db, transport, tool_server, stack.aclose, environment)
    finally:
        tool_server.close()


@dataclass(frozen=True)
class _Served:
    on_event: EventCallback | None
    on_protocol_error: ProtocolErrorCallback | None
    dialogue_id: str
    call_timeout_s: float


@asynccontextmanager
async def _connect_stdio(
    environment: Environment,
    served: _Served,
    base_dir: Path | None,
    database: Path | None,
    source: str,
) -> AsyncIterator[Connected]:
    tmp = Path(tempfile.mkdtemp(prefix="dialogsim-"))
    live: Database | None = None
    try:
        db_file = tmp / "database.sqlite"
        live = database_file_for(
            environment,
            db_file,
            base_dir=base_dir,
            database=database,
            source=source,
            call_timeout_s=served.call_timeout_s,
        )
        env_file = tmp / "environment.json"
        save_environment(environment, env_file)
        async with AsyncExitStack() as stack:
            client = await stack.enter_async_context(
                stdio_tool_server(
                    env_file,
                    database=db_file,
                    in_place=True,
                    on_event=served.on_event,
                    dialogue_id=served.dialogue_id,
                    validate=False,
                    call_timeout_s=served.call_timeout_s,
                    on_protocol_error=served.on_protocol_error,
                )
            )
            yield Connected(client, live, "stdio", None, stack.aclose, environment)
    finally:
        if live is not None:
            live.close()
        shutil.rmtree(tmp, ignore_errors=True)
