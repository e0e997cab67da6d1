"""One MCP server per environment and database, built on the low-level ``mcp`` Server.

The SDK neither validates arguments nor turns exceptions into ``isError`` results; this
module does both: every call is validated against the tool's input schema, every
ToolError becomes an ``isError`` result naming what was wrong, and every call and result
is reported through ``on_event`` so it can go on the dialogue's bus.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import mcp_types as types
from mcp.server import Server

from schemas import Effect, Environment, ToolCall, ToolEvent, ToolResult
from schemas.errors import ToolError
from toolservers.database import Database, open_database
from toolservers.executor import ToolExecutor

__all__ = ["EventCallback", "ToolServer", "build_tool_server"]

EventCallback = Callable[[ToolEvent], Awaitable[None]]


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
    ) -> None:
        self.environment = environment
        self.db = db
        self.executor = ToolExecutor(environment, db, source=source)
        self.on_event = on_event
        self.dialogue_id = dialogue_id
        self._ids = itertools.count(1)
        self._listed = _listing(environment)
        self.server: Server[Any] = Server(
            f"dialogsim-{environment.id}",
            version="1",
            instructions=environment.policy,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
        )
        # The SDK wraps every request in an OpenTelemetry span by default, a no-op unless an
        # exporter is installed (dialogsim installs none: the bus records every call). Its
        # bookkeeping is ~15% of an in-process call; the SDK documents dropping it.
        self.server.middleware = [m for m in self.server.middleware if type(m).__name__ != "OpenTelemetryMiddleware"]

    async def _list_tools(self, _ctx: Any, _params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=self._listed)

    async def _call_tool(self, _ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        call_id = f"call_{next(self._ids):04d}"
        arguments = dict(params.arguments or {})
        return await self.call(call_id, params.name, arguments)

    async def call(self, call_id: str, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        """Execute one call and report it; what the MCP handler does, callable directly."""
        if self.on_event is not None:
            await self.on_event(ToolCall(dialogue_id=self.dialogue_id, call_id=call_id, tool=name, arguments=arguments))
        started = time.perf_counter()
        try:
            outcome = self.executor.call(name, arguments)
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
            return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)
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
        spec = self.environment.tool(name)
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=outcome.text)],
            structured_content=outcome.structured if spec.output_schema is not None else None,
            is_error=False,
        )

    def close(self) -> None:
        self.db.close()


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
) -> ToolServer:
    """Open a private copy of the environment's database and serve its tools.

    ``database`` overrides the environment's own database file. Raises ConfigError
    subclasses for a bad database or a tool that does not fit it.
    """
    db = open_database(environment.database, base_dir=base_dir, in_place=in_place, override_path=database)
    try:
        return ToolServer(environment, db, on_event=on_event, dialogue_id=dialogue_id, source=source)
    except BaseException:
        db.close()
        raise
