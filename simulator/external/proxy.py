"""The recording proxy: dialogsim's own MCP server in front of an external one.

The agent connects to the proxy (in process); the proxy lists the external server's tools
as they are, forwards every call, and reports each call and its result through
``on_event`` exactly as dialogsim's SQL tool servers do (``ToolCall`` / ``ToolResult``),
so records over external servers look like any other. The state's display path
(``/workspace/<name>``, :func:`~simulator.external.spec.display_path`) in arguments is
replaced by the dialogue's real state path on the way in, and that path by the display
path on the way out, so records and agents never see temporary paths.

A server that crashes, hangs or closes the connection answers the call with an
``isError`` result whose ``error_code`` is ``server_failure``; the dialogue runner ends
the dialogue with ``tool_failure`` on seeing it.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pydantic
from mcp.server import Server
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT

from schemas import ToolCall, ToolResult, UserToolCall, UserToolResult
from schemas.errors import ToolServerFailure
from simulator.external.instance import Instance, describe_error
from simulator.external.spec import bind_state, unbind_state

__all__ = ["Answer", "RecordingProxy", "call_instance"]

#: Extra time over the per-call timeout before this side gives up on a call.
_GRACE_S = 1.0


class Answer:
    """One call's answer as the caller sees it (state path already replaced by the display path)."""

    __slots__ = ("content", "error_code", "is_error", "structured", "text")

    def __init__(
        self,
        text: str,
        *,
        is_error: bool,
        structured: Any = None,
        error_code: str | None = None,
        content: list[Any] | None = None,
    ) -> None:
        self.text = text
        self.is_error = is_error
        self.structured = structured
        self.error_code = error_code
        self.content = content or [types.TextContent(type="text", text=text)]


async def call_instance(instance: Instance, name: str, arguments: dict[str, Any], limit_s: float) -> Answer:
    """Call ``name`` on ``instance`` and classify what happened; never raises for the server's doing.

    A protocol error (JSON-RPC error) is an ``isError`` answer with code ``protocol_error``;
    a lost connection or no answer within ``limit_s`` is ``server_failure`` and marks the
    instance failed.
    """
    state, shown = instance.state, instance.shown
    if instance.failed is not None or instance.dead.is_set():
        why = instance.failed or "the connection had ended"
        return Answer(
            f"Error ({ToolServerFailure.code}): the tool server is gone: {why}",
            is_error=True,
            error_code=ToolServerFailure.code,
        )
    request = types.CallToolRequest(
        params=types.CallToolRequestParams(name=name, arguments=bind_state(arguments, state, shown))
    )
    failure: str | None = None
    result: types.CallToolResult | None = None
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            await instance.dead.wait()
            tg.cancel_scope.cancel()

        tg.start_soon(watch)
        with anyio.move_on_after(limit_s + _GRACE_S):
            try:
                result = await instance.client.session.send_request(
                    request, types.CallToolResult, request_read_timeout_seconds=limit_s
                )
            except MCPError as exc:
                if exc.code == REQUEST_TIMEOUT:
                    failure = f"no answer within {limit_s:g} s"
                elif exc.code == CONNECTION_CLOSED:
                    failure = "the connection closed during the call"
                else:
                    tg.cancel_scope.cancel()
                    message = unbind_state(exc.message, state, shown)
                    return Answer(
                        f"Error (protocol_error {exc.code}): {message}", is_error=True, error_code="protocol_error"
                    )
            except pydantic.ValidationError as exc:
                tg.cancel_scope.cancel()
                return Answer(
                    f"Error (protocol_error): the answer is not a valid tool result: {describe_error(exc)}",
                    is_error=True,
                    error_code="protocol_error",
                )
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError, httpx2.HTTPError) as exc:
                failure = f"the connection failed: {describe_error(exc)}"
        tg.cancel_scope.cancel()
    if result is None:
        failure = failure or ("the server exited" if instance.dead.is_set() else f"no answer within {limit_s:g} s")
        tail = instance.log_tail()
        if tail:
            failure += f" (its stderr ends: {tail[-200:]})"
        instance.failed = failure
        return Answer(f"Error ({ToolServerFailure.code}): {failure}", is_error=True, error_code=ToolServerFailure.code)
    content = [_unbind_content(c, state, shown) for c in result.content]
    text = "".join(c.text for c in content if isinstance(c, types.TextContent))
    structured = unbind_state(result.structured_content, state, shown)
    is_error = bool(result.is_error)
    return Answer(
        text, is_error=is_error, structured=structured, error_code="tool_error" if is_error else None, content=content
    )


def _unbind_content(block: Any, state: Path | None, shown: str | None) -> Any:
    if isinstance(block, types.TextContent):
        return types.TextContent(type="text", text=unbind_state(block.text, state, shown))
    return block


EventSink = Callable[[Any], Awaitable[None]]


class RecordingProxy:
    """An MCP server (``server``) that forwards to ``instance`` and reports every call.

    ``side`` ``agent`` reports ToolCall/ToolResult (through the runner's tool-event
    callback); ``user`` reports UserToolCall/UserToolResult, for the user's own tools.
    """

    def __init__(
        self,
        instance: Instance,
        tools: list[types.Tool],
        *,
        on_event: EventSink | None,
        dialogue_id: str = "",
        call_timeout_s: float = 60.0,
        side: str = "agent",
        name: str = "external",
    ) -> None:
        self.instance = instance
        self.tools = tools
        self.on_event = on_event
        self.dialogue_id = dialogue_id
        self.call_timeout_s = call_timeout_s
        self.side = side
        self._ids = itertools.count(1)
        self.server: Server[Any] = Server(
            f"dialogsim-{name}", version="1", on_list_tools=self._list_tools, on_call_tool=self._call_tool
        )

    async def _list_tools(self, _ctx: Any, _params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=self.tools)

    async def _call_tool(self, _ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        prefix = "call" if self.side == "agent" else "ucall"
        return await self.call(f"{prefix}_{next(self._ids):04d}", params.name, dict(params.arguments or {}))

    async def call_next(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        """Call ``name`` with the next call id (how the user's own tools are called)."""
        prefix = "call" if self.side == "agent" else "ucall"
        return await self.call(f"{prefix}_{next(self._ids):04d}", name, arguments)

    async def call(self, call_id: str, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        """Forward one call and report it; what the MCP handler does, callable directly."""
        call_type, result_type = (ToolCall, ToolResult) if self.side == "agent" else (UserToolCall, UserToolResult)
        if self.on_event is not None:
            await self.on_event(
                call_type(dialogue_id=self.dialogue_id, call_id=call_id, tool=name, arguments=arguments)
            )
        started = time.perf_counter()
        answer = await call_instance(self.instance, name, arguments, self.call_timeout_s)
        elapsed = (time.perf_counter() - started) * 1000
        if self.on_event is not None:
            await self.on_event(
                result_type(
                    dialogue_id=self.dialogue_id,
                    call_id=call_id,
                    tool=name,
                    is_error=answer.is_error,
                    text=answer.text,
                    structured=answer.structured,
                    error_code=answer.error_code,
                    duration_ms=elapsed,
                )
            )
        return types.CallToolResult(
            content=answer.content,
            structured_content=answer.structured if isinstance(answer.structured, dict) else None,
            is_error=answer.is_error,
        )
