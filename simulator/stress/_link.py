"""A supervised, restartable MCP connection whose every call comes back classified.

The ``mcp.Client`` is entered and held by a task of its own. Calls run in the caller's
task and race the holder: when the server dies, the transport may fail inside the
client's task group (an HTTP server that vanished) or just close (a stdio process that
exited); either way the holder ends, and the waiting call is reported as a crash instead
of taking the caller down with an exception group. ``reconnect`` opens a new session (for
a server started by command: a new process).
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import httpx2
import mcp_types as types
import pydantic
from anyio.abc import TaskGroup, TaskStatus
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT

from schemas.errors import ToolServerError
from simulator.stress.report import Outcome
from toolservers.server import ERROR_CODE_META

__all__ = ["CallResult", "Link", "LinkDown"]

T = TypeVar("T")

# Extra time over the per-call timeout before a call is abandoned by this side: the SDK's
# own timeout starts only once the request is written, and a write can block too.
_GRACE_S = 1.0
_CLOSE_TIMEOUT_S = 15.0
_MAX_PAGES = 100


class LinkDown(ToolServerError):
    """The target could not be connected (or reconnected)."""

    code = "link_down"


@dataclass(frozen=True, slots=True)
class CallResult:
    """One call's outcome. ``text`` is the result's text (or the error's message), shortened."""

    outcome: Outcome
    latency_ms: float
    is_error: bool = False
    structured: dict[str, Any] | None = None
    has_structured: bool = False
    text: str = ""
    error_code: int | None = None
    #: For an ``isError`` result of a dialogsim server: its ToolError code (``timeout``, ...).
    tool_error_code: str | None = None


class _Session:
    def __init__(self) -> None:
        self.client: Client | None = None
        self.error: BaseException | None = None
        self.stop = anyio.Event()
        self.dead = anyio.Event()
        #: Set when a call saw the connection close; the session is then useless.
        self.broken = False


class Link:
    """A connection to one target, held in ``task_group``; reconnectable.

    ``factory`` makes a new, unentered ``mcp.Client`` for every (re)connection.
    """

    def __init__(self, factory: Callable[[], Client], task_group: TaskGroup, *, connect_timeout: float) -> None:
        self._factory = factory
        self._tg = task_group
        self._connect_timeout = connect_timeout
        self._session: _Session | None = None
        self._lock = anyio.Lock()
        self.generation = 0
        self.reconnects = 0
        self.server_name: str | None = None
        self.server_version: str | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open a session; raises LinkDown saying why it could not be opened."""
        session = _Session()
        await self._tg.start(self._hold, session)
        if session.error is not None or session.client is None:
            raise LinkDown(_describe(session.error) if session.error else "the connection closed at once")
        self._session = session
        self.generation += 1
        info = session.client.server_info
        if info is not None:
            self.server_name, self.server_version = info.name, info.version

    async def _hold(self, session: _Session, *, task_status: TaskStatus[None]) -> None:
        started = False
        try:
            with anyio.CancelScope(deadline=anyio.current_time() + self._connect_timeout) as scope:
                async with self._factory() as client:
                    scope.deadline = math.inf
                    session.client = client
                    started = True
                    task_status.started()
                    await session.stop.wait()
            if scope.cancelled_caught and not started:
                session.error = TimeoutError(f"no answer to the handshake within {self._connect_timeout:.0f} s")
        except Exception as exc:  # the connection's own failure, recorded, never raised into the group
            session.error = exc
        finally:
            session.dead.set()
        if not started:
            task_status.started()

    async def _close_session(self, session: _Session) -> None:
        session.stop.set()
        with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_TIMEOUT_S):
            await session.dead.wait()

    async def reconnect(self, generation: int | None = None) -> bool:
        """Replace a dead session with a new one; True when the target answers again.

        With ``generation``, only the session of that generation is replaced: concurrent
        callers that saw the same failure reconnect once.
        """
        async with self._lock:
            if generation is not None and generation != self.generation and self.alive_now:
                return True
            if self._session is not None:
                await self._close_session(self._session)
                self._session = None
            try:
                await self.connect()
            except LinkDown:
                return False
            self.reconnects += 1
            return True

    async def aclose(self) -> None:
        if self._session is not None:
            await self._close_session(self._session)
            self._session = None

    @property
    def alive_now(self) -> bool:
        s = self._session
        return s is not None and not s.dead.is_set() and not s.broken

    # -- requests ----------------------------------------------------------------------------

    async def _guarded(self, work: Callable[[Client], Awaitable[T]], limit_s: float) -> tuple[T | None, str]:
        """Run ``work`` against the live client; (result, "") or (None, "crash"/"hang")."""
        session = self._session
        if session is None or session.client is None or session.dead.is_set() or session.broken:
            return None, "crash"
        client = session.client
        result: T | None = None
        error: Exception | None = None
        done = False
        async with anyio.create_task_group() as tg:

            async def watch() -> None:
                await session.dead.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(watch)
            with anyio.move_on_after(limit_s + _GRACE_S):
                try:
                    result = await work(client)
                except Exception as exc:  # re-raised below, outside the group, unwrapped
                    error = exc
                done = True
            tg.cancel_scope.cancel()
        if error is not None:
            raise error
        if done:
            return result, ""
        return None, "crash" if session.dead.is_set() else "hang"

    async def call(self, name: str, arguments: dict[str, Any], limit_s: float) -> CallResult:
        """Call tool ``name`` and classify the answer; never raises for anything the server does."""
        started = time.perf_counter()

        def elapsed() -> float:
            return (time.perf_counter() - started) * 1000

        async def work(client: Client) -> CallResult:
            request = types.CallToolRequest(params=types.CallToolRequestParams(name=name, arguments=arguments))
            try:
                # Not client.call_tool: that checks the output schema itself and raises; the
                # raw result is what is under test.
                result = await client.session.send_request(
                    request, types.CallToolResult, request_read_timeout_seconds=limit_s
                )
            except MCPError as exc:
                if exc.code == REQUEST_TIMEOUT:
                    return CallResult(Outcome.HANG, elapsed(), text=f"no answer within {limit_s:g} s")
                if exc.code == CONNECTION_CLOSED:
                    self._mark_broken()
                    return CallResult(Outcome.CRASH, elapsed(), text="the connection closed during the call")
                return CallResult(Outcome.PROTOCOL_ERROR, elapsed(), text=_short(exc.message), error_code=exc.code)
            except pydantic.ValidationError as exc:
                text = f"the answer is not a valid CallToolResult: {_short(str(exc))}"
                return CallResult(Outcome.PROTOCOL_ERROR, elapsed(), text=text)
            except TimeoutError:
                return CallResult(Outcome.HANG, elapsed(), text="the request could not be sent in time")
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError, httpx2.HTTPError) as exc:
                self._mark_broken()
                return CallResult(Outcome.CRASH, elapsed(), text=f"the connection failed: {_describe(exc)}")
            except Exception as exc:  # anything else the client library makes of a strange answer
                text = f"the client could not use the answer: {_describe(exc)}"
                return CallResult(Outcome.PROTOCOL_ERROR, elapsed(), text=text)
            return _classify(result, elapsed())

        outcome, failure = await self._guarded(work, limit_s)
        if outcome is not None:
            return outcome
        if failure == "crash":
            error = self._session.error if self._session is not None else None
            why = f": {_describe(error)}" if error is not None else ""
            return CallResult(Outcome.CRASH, elapsed(), text=f"the connection was lost{why}")
        return CallResult(Outcome.HANG, elapsed(), text=f"no answer within {limit_s:g} s")

    def _mark_broken(self) -> None:
        if self._session is not None:
            self._session.broken = True

    async def list_tools(self, limit_s: float) -> list[types.Tool]:
        """Every listed tool (all pages); raises LinkDown when the listing fails."""

        async def work(client: Client) -> list[types.Tool]:
            tools: list[types.Tool] = []
            cursor: str | None = None
            for _ in range(_MAX_PAGES):
                page = await client.session.list_tools(params=types.PaginatedRequestParams(cursor=cursor))
                tools.extend(page.tools)
                cursor = page.next_cursor
                if not cursor:
                    break
            return tools

        try:
            with anyio.fail_after(limit_s + _GRACE_S):
                tools, failure = await self._guarded(work, limit_s)
        except (MCPError, pydantic.ValidationError, TimeoutError) as exc:
            raise LinkDown(f"tools/list failed: {_describe(exc)}") from None
        if tools is None:
            raise LinkDown("tools/list got no answer" if failure == "hang" else "the connection was lost")
        return tools

    async def responsive(self, limit_s: float) -> bool:
        """Whether the server still answers (a ``tools/list`` within ``limit_s`` seconds)."""

        async def work(client: Client) -> bool:
            try:
                with anyio.fail_after(limit_s):
                    await client.session.list_tools()
            except (MCPError, TimeoutError, pydantic.ValidationError):
                return False
            return True

        ok, _ = await self._guarded(work, limit_s)
        return bool(ok)


def _classify(result: types.CallToolResult, latency_ms: float) -> CallResult:
    texts = [c.text for c in result.content if isinstance(c, types.TextContent)]
    code = (result.meta or {}).get(ERROR_CODE_META) if result.is_error else None
    return CallResult(
        Outcome.TOOL_ERROR if result.is_error else Outcome.RESULT,
        latency_ms,
        is_error=bool(result.is_error),
        structured=result.structured_content,
        has_structured=result.structured_content is not None,
        text=_short(" ".join(texts)),
        tool_error_code=code if isinstance(code, str) else None,
    )


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(exc: BaseException) -> str:
    """The innermost meaningful message of an exception (groups unwrapped)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    message = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {_short(message, 200)}"
