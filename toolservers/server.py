"""One MCP server per environment and database, built on the low-level ``mcp`` Server.

The SDK neither validates arguments nor turns exceptions into ``isError`` results; this
module does both: every call is validated against the tool's input schema, every
ToolError becomes an ``isError`` result naming what was wrong, and every call and result
is reported through ``on_event`` so it can go on the dialogue's bus.

Each ``isError`` result carries its error code in ``_meta["dialogsim/error_code"]`` too,
for programs (the text says it to a model). A call to a tool the server does not have
is a protocol error, not a tool call: it is
answered with a JSON-RPC error (``-32602``, invalid params), reported to
``on_protocol_error`` as an ``ErrorEvent`` (``where="tools/call"``,
``error_type="unknown_tool"``), and never reaches ``on_event``.
"""

from __future__ import annotations

import itertools
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import mcp_types as types
from mcp.server import Server
from mcp.shared.exceptions import MCPError

from schemas import Effect, Environment, ErrorEvent, ToolCall, ToolEvent, ToolResult
from schemas.errors import ToolError
from toolservers.database import DEFAULT_CALL_TIMEOUT_S, Database, open_database
from toolservers.executor import ToolExecutor

__all__ = [
    "ERROR_CODE_META",
    "EventCallback",
    "ProtocolErrorCallback",
    "ToolServer",
    "build_tool_server",
    "database_file_for",
    "unknown_tool_error",
]

EventCallback = Callable[[ToolEvent], Awaitable[None]]
#: The ``_meta`` key of an ``isError`` result that holds its ToolError code (``timeout``, ...).
ERROR_CODE_META = "dialogsim/error_code"
#: Receives the calls that never became tool calls (an unknown tool name).
ProtocolErrorCallback = Callable[[ErrorEvent], Awaitable[None]]


class ToolServer:
    """An environment's tools served over MCP against one private database.

    ``server`` is the low-level MCP server object: connect in process with
    ``mcp.Client(tool_server.server)`` or run it on any transport.
    """

    def __init__(
        self,
        environment: Environment,
        db: Database,
        *,
        on_event: EventCallback | None = None,
        dialogue_id: str = "",
        source: str = "environment",
        on_protocol_error: ProtocolErrorCallback | None = None,
    ) -> None:
        self.environment = environment
        self.db = db
        self.executor = ToolExecutor(environment, db, source=source)
        self.on_event = on_event
        self.on_protocol_error = on_protocol_error
        self.dialogue_id = dialogue_id
        self._ids = itertools.count(1)
        self._listed = _listing(environment)
        self.server: Server[Any] = Server(
            f"dialogsim-{environment.id}",
            version="1",
            instructions=environment.policy,
            on_list_tools=self._list_tools,
            # The handler answers with the result's wire form, a dict, which the SDK's runner
            # takes as it takes a model (mcp.server.runner._dump_result); its type says models only.
            on_call_tool=cast(Any, self._call_tool),
        )
        # The SDK wraps every request in an OpenTelemetry span by default, a no-op unless an
        # exporter is installed (dialogsim installs none: the bus records every call). Its
        # bookkeeping is ~15% of an in-process call; the SDK documents dropping it.
        self.server.middleware = [m for m in self.server.middleware if type(m).__name__ != "OpenTelemetryMiddleware"]

    async def _list_tools(self, _ctx: Any, _params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=self._listed)

    async def _call_tool(self, _ctx: Any, params: types.CallToolRequestParams) -> dict[str, Any]:
        if not self.executor.has_tool(params.name):
            error = unknown_tool_error(params.name, [t.name for t in self.environment.tools])
            if self.on_protocol_error is not None:
                await self.on_protocol_error(
                    ErrorEvent(
                        dialogue_id=self.dialogue_id,
                        where="tools/call",
                        error_type="unknown_tool",
                        message=error.message,
                    )
                )
            raise error
        call_id = f"call_{next(self._ids):04d}"
        arguments = dict(params.arguments or {})
        # The result in its wire form (what the SDK would dump a CallToolResult to): the SDK
        # validates it against the protocol's result shape either way, so building the
        # model here only to have it dumped again is work for nothing.
        return await self._execute(call_id, params.name, arguments)

    async def call(self, call_id: str, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        """Execute one call and report it; what the MCP handler does for a known tool, callable directly.

        An unknown ``name`` is answered here as an ``invalid_arguments`` result (the MCP
        handler refuses it before: see the module's docstring).
        """
        return types.CallToolResult.model_validate(await self._execute(call_id, name, arguments))

    async def _execute(self, call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Execute one call, report it on ``on_event`` and return its ``CallToolResult`` as sent."""
        if self.on_event is not None:
            await self.on_event(ToolCall(dialogue_id=self.dialogue_id, call_id=call_id, tool=name, arguments=arguments))
        started = time.perf_counter()
        try:
            outcome = await self.executor.acall(name, arguments)
        except ToolError as exc:
            elapsed = (time.perf_counter() - started) * 1000
            text = f"Error ({exc.code}): {exc}"
            if self.on_event is not None:
                await self.on_event(
                    ToolResult(
                        dialogue_id=self.dialogue_id,
                        call_id=call_id,
                        tool=name,
                        is_error=True,
                        text=text,
                        error_code=exc.code,
                        duration_ms=elapsed,
                    )
                )
            return {
                "_meta": {ERROR_CODE_META: exc.code},
                "content": [{"type": "text", "text": text}],
                "isError": True,
                "resultType": "complete",
            }
        elapsed = (time.perf_counter() - started) * 1000
        if self.on_event is not None:
            await self.on_event(
                ToolResult(
                    dialogue_id=self.dialogue_id,
                    call_id=call_id,
                    tool=name,
                    is_error=False,
                    text=outcome.text,
                    structured=outcome.structured,
                    duration_ms=elapsed,
                    affected=outcome.affected,
                )
            )
        result: dict[str, Any] = {"content": [{"type": "text", "text": outcome.text}]}
        if outcome.structured is not None and self.environment.tool(name).output_schema is not None:
            result["structuredContent"] = outcome.structured
        result["isError"] = False
        result["resultType"] = "complete"
        return result

    def close(self) -> None:
        self.db.close()
        # The MCP SDK's own objects of a connection end in reference cycles (freed only by the
        # garbage collector); what they reach of ours is let go now, so the dialogue's bus and
        # events, which the callbacks hold, are freed as soon as the dialogue is done.
        self.on_event = self.on_protocol_error = None


def unknown_tool_error(name: str, known: list[str]) -> MCPError:
    """The JSON-RPC error (invalid params) a call to a tool the server does not have gets."""
    return MCPError(
        code=types.INVALID_PARAMS,
        message=f"unknown tool {name!r}; expected one of: {', '.join(known) or '(none)'}",
        data={"tool": name},
    )


# id(environment) -> (environment kept alive so its id stays its own, its tools as MCP lists them)
_LISTED: OrderedDict[int, tuple[Environment, list[types.Tool]]] = OrderedDict()


def _listing(environment: Environment) -> list[types.Tool]:
    """The environment's tools as MCP ``Tool`` objects, built once per environment (read-only)."""
    hit = _LISTED.get(id(environment))
    if hit is not None and hit[0] is environment:
        _LISTED.move_to_end(id(environment))
        return hit[1]
    listed = [_mcp_tool(t) for t in environment.tools]
    _LISTED[id(environment)] = (environment, listed)
    while len(_LISTED) > 64:
        _LISTED.popitem(last=False)
    return listed


def _mcp_tool(spec: Any) -> types.Tool:
    write = spec.effect is Effect.WRITE
    return types.Tool(
        name=spec.name,
        description=spec.description,
        input_schema=spec.input_schema,
        output_schema=spec.output_schema,
        annotations=types.ToolAnnotations(
            read_only_hint=not write,
            destructive_hint=write and spec.category in {"delete", "update"},
            idempotent_hint=not write,
            open_world_hint=False,
        ),
    )


def build_tool_server(
    environment: Environment,
    *,
    base_dir: Path | None = None,
    database: Path | None = None,
    in_place: bool = False,
    on_event: EventCallback | None = None,
    dialogue_id: str = "",
    source: str = "environment",
    call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
    on_protocol_error: ProtocolErrorCallback | None = None,
) -> ToolServer:
    """Open a private copy of the environment's database and serve its tools.

    ``database`` overrides the environment's own database file. ``call_timeout_s``
    bounds each call's SQL (past it the call is answered with a ``timeout`` error).
    Raises ConfigError subclasses for a bad database or a tool that does not fit it.
    """
    db = open_database(
        environment.database,
        base_dir=base_dir,
        in_place=in_place,
        override_path=database,
        call_timeout_s=call_timeout_s,
    )
    try:
        return ToolServer(
            environment,
            db,
            on_event=on_event,
            dialogue_id=dialogue_id,
            source=source,
            on_protocol_error=on_protocol_error,
        )
    except BaseException:
        db.close()
        raise


def database_file_for(
    environment: Environment,
    path: Path,
    *,
    base_dir: Path | None = None,
    database: Path | None = None,
    source: str = "environment",
    call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
    served_by: str = "a subprocess",
) -> Database:
    """Write a private copy of the environment's database to ``path`` for another process to serve.

    The database and every tool are checked first (the same ConfigError subclasses as
    :func:`build_tool_server`), so no process starts for a broken environment. Returns this
    process's read-only view of the file, which shows what the serving process changes.
    """
    checked = build_tool_server(environment, base_dir=base_dir, database=database, source=source)
    try:
        target = sqlite3.connect(path)
        try:
            # A private scratch copy another process opens next: nothing to make durable
            # (the OS shows the written pages to that process without an fsync, and a
            # crash loses nothing a rerun would not make again), so no journal, no sync.
            target.execute("PRAGMA synchronous=OFF")
            target.execute("PRAGMA journal_mode=OFF")
            checked.db.conn.backup(target)
        finally:
            target.close()
    finally:
        checked.close()
    return Database(
        sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, check_same_thread=False),
        label=f"{path} (served by {served_by})",
        call_timeout_s=call_timeout_s,
    )
