"""One loopback HTTP host for many dialogues' tool servers at once.

Outside agents (a program under evaluation, an agent framework) reach a dialogue's tools
over streamable HTTP. Starting a uvicorn server per dialogue would cost a socket and a
server start each; instead one ``ToolHost`` listens once and mounts each dialogue's
in-process ``ToolServer`` at its own path with its own bearer token::

    async with ToolHost() as host:
        async with host.mount(tool_server, name=dialogue_id) as mount:
            mount.url    # http://127.0.0.1:PORT/d/<name>/mcp
            mount.token  # required as "Authorization: Bearer <token>"
            mount.stdio  # a command relaying stdio to the same server (for agents that spawn one)

Mounting creates an MCP session manager for the server and registers its path; no
process or socket is started, so it takes well under a millisecond. Unmounting removes
the path (requests then get 404) and ends the mount's sessions. Each mount checks its
own token (401 otherwise, the token of another mount included) and keeps at most
``max_sessions`` sessions, ending those idle for ``session_idle_timeout_s``; the host
refuses Host headers that do not name it exactly (address and port). Tool calls are
reported by the ToolServer's own ``on_event``, so they are recorded exactly like
in-process calls.
"""

from __future__ import annotations

import hmac
import logging
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import anyio
from mcp.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from schemas.errors import ToolServerError, UsageError
from toolservers._http import _bind, _check_host, _uvicorn_server, new_token
from toolservers._sessions import (
    DEFAULT_MAX_SESSIONS,
    DEFAULT_SESSION_IDLE_TIMEOUT_S,
    HostCheck,
    SessionGate,
    url_host,
)
from toolservers.stdio_pool import StdioCommand, relay_command, serve_sessions

__all__ = ["Mount", "ToolHost"]

logger = logging.getLogger(f"dialogsim.{__name__}")

_PATH = re.compile(r"/d/([^/]+)/mcp/?")
_UNSAFE = re.compile(r"[^A-Za-z0-9._~-]+")
_STOP_TIMEOUT_S = 15.0


class Mountable(Protocol):
    """What the host serves: an MCP server for one dialogue (a ToolServer, or a recording proxy)."""

    @property
    def server(self) -> Server[Any]: ...

    @property
    def dialogue_id(self) -> str: ...


class Mount(NamedTuple):
    """A dialogue's tool server on the host: its URL, its token, and a stdio relay to it."""

    name: str
    url: str
    token: str
    stdio: StdioCommand | None


@dataclass(eq=False)
class _Mounted:
    gate: SessionGate
    token: bytes


class _Router:
    """The host's ASGI app: ``/d/<name>/mcp`` to that mount's session manager, behind its token."""

    def __init__(self) -> None:
        self.mounts: dict[str, _Mounted] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        match = _PATH.fullmatch(scope["path"])
        mounted = self.mounts.get(match.group(1)) if match else None
        if mounted is None:
            response = JSONResponse(
                {"error": "not_found", "message": "no dialogue is mounted at this path; expected /d/<dialogue>/mcp"},
                status_code=404,
            )
            await response(scope, receive, send)
            return
        if not _authorized(scope, mounted.token):
            response = JSONResponse(
                {
                    "error": "unauthorized",
                    "message": "missing or wrong bearer token for this dialogue; send 'Authorization: Bearer <token>'",
                },
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="dialogsim"'},
            )
            await response(scope, receive, send)
            return
        await mounted.gate(scope, receive, send)


def _authorized(scope: Scope, token: bytes) -> bool:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credentials = value.partition(b" ")
            return scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(), token)
    return False


class ToolHost:
    """A loopback streamable-HTTP server whose paths are mounted and removed per dialogue.

    ``async with ToolHost() as host`` binds 127.0.0.1 (a free port unless ``port`` is
    given) and serves until the block ends. Raises ConfigError for a non-loopback
    ``host`` without ``allow_remote`` or an address that cannot be bound.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        allow_remote: bool = False,
        stdio: bool = True,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        session_idle_timeout_s: float | None = DEFAULT_SESSION_IDLE_TIMEOUT_S,
        clock: Callable[[], float] | None = None,
    ) -> None:
        _check_host(host, allow_remote)
        self.host = host
        self._port = port
        #: Whether mounts also offer a stdio relay (a unix socket per mount).
        self.stdio = stdio
        #: Sessions per mount, and how long one may be idle (``SessionGate``).
        self.max_sessions = max_sessions
        self.session_idle_timeout_s = session_idle_timeout_s
        self._clock = clock
        self._router = _Router()
        self._stack = AsyncExitStack()
        self._base_url = ""
        self._tmp: Path | None = None
        self._sockets = 0

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` once entered."""
        return self._base_url

    @property
    def mounted(self) -> int:
        """How many dialogues are mounted now."""
        return len(self._router.mounts)

    async def __aenter__(self) -> ToolHost:
        sock = _bind(self.host, self._port)
        self._stack.callback(sock.close)
        port = sock.getsockname()[1]
        self._base_url = f"http://{url_host(self.host)}:{port}"
        if self.stdio:
            self._tmp = Path(tempfile.mkdtemp(prefix="dialogsim-host-", dir="/tmp"))
            self._stack.callback(shutil.rmtree, self._tmp, True)
        server = _uvicorn_server(HostCheck(self._router, host=self.host, port=port), self.host, port)
        server.config.lifespan = "off"
        stopped = anyio.Event()

        async def run() -> None:
            try:
                # Not server.serve(): that would take over the process's signal handlers.
                await server._serve(sockets=[sock])
            except SystemExit:
                raise ToolServerError("the tool host failed to start (see the log above)") from None
            finally:
                stopped.set()

        tg = await self._stack.enter_async_context(anyio.create_task_group())

        async def stop() -> None:
            server.should_exit = True
            with anyio.CancelScope(shield=True), anyio.move_on_after(_STOP_TIMEOUT_S) as scope:
                await stopped.wait()
            if scope.cancelled_caught:
                logger.warning("the tool host did not stop within %.0f s", _STOP_TIMEOUT_S)
                tg.cancel_scope.cancel()

        self._stack.push_async_callback(stop)
        tg.start_soon(run)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    def _name_for(self, wanted: str) -> str:
        base = _UNSAFE.sub("-", wanted).strip("-.") or "dialogue"
        name, n = base, 1
        while name in self._router.mounts:
            n += 1
            name = f"{base}-{n}"
        return name

    @asynccontextmanager
    async def mount(self, tool_server: Mountable, *, name: str = "", token: str | None = None) -> AsyncIterator[Mount]:
        """Serve ``tool_server`` at ``/d/<name>/mcp`` while the block runs.

        ``name`` (a dialogue id) is made URL-safe and unique; ``token`` is random unless
        given. Enter and leave the block in the same task. Only one mount of a given
        ToolServer at a time.
        """
        if not self._base_url:
            raise UsageError("enter the host (async with ToolHost()) before mounting")
        key = self._name_for(name or tool_server.dialogue_id)
        token = token or new_token()
        manager = StreamableHTTPSessionManager(
            app=tool_server.server,
            # The gate expires sessions and the host's HostCheck checks Host headers; the
            # SDK's own limit stays as a backstop for requests racing past the gate.
            session_idle_timeout=None,
            max_sessions=self.max_sessions,
        )
        gate = SessionGate(
            manager,
            path=f"/d/{key}/mcp",
            max_sessions=self.max_sessions,
            idle_timeout_s=self.session_idle_timeout_s,
            clock=self._clock,
        )
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(gate.running())
            stdio: StdioCommand | None = None
            if self._tmp is not None:
                self._sockets += 1
                path = self._tmp / f"{self._sockets}.sock"
                listener = await anyio.create_unix_listener(path)
                await stack.enter_async_context(listener)
                stack.callback(path.unlink, True)
                tg = await stack.enter_async_context(anyio.create_task_group())
                stack.callback(tg.cancel_scope.cancel)
                tg.start_soon(serve_sessions, tool_server.server, listener)
                stdio = relay_command(path)
            self._router.mounts[key] = _Mounted(gate, token.encode())
            try:
                yield Mount(key, f"{self._base_url}/d/{key}/mcp", token, stdio)
            finally:
                del self._router.mounts[key]
