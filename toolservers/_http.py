"""Streamable HTTP on loopback: a bearer-token guard, a uvicorn runner and a client helper.

Every request must carry ``Authorization: Bearer <token>`` (401 with a JSON body
otherwise); a Host header must name this server exactly, address and port (421
otherwise: DNS rebinding). Binding to another address needs ``allow_remote``. A server
keeps at most ``max_sessions`` MCP sessions (503 with ``Retry-After`` beyond) and ends
those idle for ``session_idle_timeout_s`` (see ``toolservers._sessions``).
"""

from __future__ import annotations

import functools
import hmac
import logging
import secrets
import signal
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, NamedTuple

import anyio
import httpx2
import mcp
import uvicorn
from mcp.client._transport import TransportStreams
from mcp.client.streamable_http import streamable_http_client
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from schemas.errors import ConfigError, ToolServerError
from toolservers._sessions import (
    DEFAULT_MAX_SESSIONS,
    DEFAULT_SESSION_IDLE_TIMEOUT_S,
    HostCheck,
    SessionGate,
    is_loopback,
    url_host,
)
from toolservers.server import ToolServer

__all__ = [
    "HttpEndpoint",
    "build_http_app",
    "check_token",
    "http_client",
    "http_tool_server",
    "is_loopback",
    "new_token",
    "serve_http",
]

logger = logging.getLogger(f"dialogsim.{__name__}")

MCP_PATH = "/mcp"
# Bounds the wait for open connections (an SSE stream a client left open) at shutdown.
_GRACEFUL_SHUTDOWN_S = 5
_STOP_TIMEOUT_S = 15.0


class HttpEndpoint(NamedTuple):
    """Where a running HTTP tool server listens and the token it requires."""

    url: str
    token: str


def new_token() -> str:
    """A fresh random bearer token."""
    return secrets.token_urlsafe(32)


def check_token(token: str | None) -> None:
    """Raise ConfigError for an empty token (a server nobody could use); None means "make one"."""
    if token is not None and not token.strip():
        raise ConfigError("--token: the token is empty; give a non-empty one, or leave --token out to get a random one")


class _BearerAuth:
    """ASGI middleware: answer 401 unless the request carries the expected bearer token."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._authorized(scope):
            response = JSONResponse(
                {
                    "error": "unauthorized",
                    "message": "missing or wrong bearer token; send 'Authorization: Bearer <token>'",
                },
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="dialogsim"'},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, credentials = value.partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(), self._token)
        return False


def build_http_app(
    tool_server: ToolServer,
    *,
    token: str,
    host: str = "127.0.0.1",
    port: int | None = None,
    max_sessions: int = DEFAULT_MAX_SESSIONS,
    session_idle_timeout_s: float | None = DEFAULT_SESSION_IDLE_TIMEOUT_S,
    clock: Callable[[], float] | None = None,
) -> ASGIApp:
    """The ASGI app serving ``tool_server`` at ``/mcp`` behind the bearer-token guard.

    Host and Origin headers must name ``host`` (or a loopback name) with ``port``
    exactly (any digits when ``port`` is None); on a wildcard address (``0.0.0.0``,
    ``::``) the Host check is off and only the token protects the server. Sessions are
    capped and expired as ``SessionGate`` says (``clock`` replaces its clock).

    Each call creates a new MCP session manager on ``tool_server.server``; serve one app
    per tool server at a time. Raises ConfigError for an empty token.
    """
    check_token(token)
    manager = StreamableHTTPSessionManager(
        app=tool_server.server,
        # The gate in front expires sessions and the Host check is HostCheck's; the SDK's
        # own limit stays as a backstop for requests racing past the gate.
        session_idle_timeout=None,
        max_sessions=max_sessions,
    )
    gate = SessionGate(
        manager, path=MCP_PATH, max_sessions=max_sessions, idle_timeout_s=session_idle_timeout_s, clock=clock
    )
    return _BearerAuth(HostCheck(_McpApp(gate), host=host, port=port), token)


class _McpApp:
    """``/mcp`` to the session gate, 404 elsewhere; the ASGI lifespan runs the gate."""

    def __init__(self, gate: SessionGate) -> None:
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["path"] not in (MCP_PATH, MCP_PATH + "/"):
            response = JSONResponse(
                {"error": "not_found", "message": f"nothing is served here; the MCP endpoint is {MCP_PATH}"},
                status_code=404,
            )
            await response(scope, receive, send)
            return
        await self.gate(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        started = False
        try:
            async with self.gate.running():
                await send({"type": "lifespan.startup.complete"})
                started = True
                await receive()  # lifespan.shutdown
        except Exception as exc:
            kind = "shutdown" if started else "startup"
            await send({"type": f"lifespan.{kind}.failed", "message": f"{type(exc).__name__}: {exc}"})
            return
        await send({"type": "lifespan.shutdown.complete"})


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket; binding here (not in uvicorn) gives the real port of ``port=0`` up front."""
    bare = host.strip("[]")
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    # proto must be IPPROTO_TCP (socket.create_server leaves it 0): asyncio sets TCP_NODELAY
    # only on such sockets, and without it Nagle + delayed ACKs add ~40 ms to each response.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((bare, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {url_host(bare)}:{port}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


def _check_host(host: str, allow_remote: bool) -> None:
    if is_loopback(host):
        return
    if not allow_remote:
        raise ConfigError(
            f"--host {host} is not a loopback address; pass --allow-remote to serve tools to other machines"
        )
    logger.warning(
        "serving tools on %s, reachable from other machines; anyone with the token can change the database",
        host,
    )


def _uvicorn_server(app: ASGIApp, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        host=host.strip("[]"),
        port=port,
        log_level="warning",
        # The host application (or the command line) configures logging, not uvicorn.
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S,
    )
    return uvicorn.Server(config)


@asynccontextmanager
async def http_tool_server(
    tool_server: ToolServer,
    *,
    token: str | None = None,
    port: int = 0,
    host: str = "127.0.0.1",
    allow_remote: bool = False,
    max_sessions: int = DEFAULT_MAX_SESSIONS,
    session_idle_timeout_s: float | None = DEFAULT_SESSION_IDLE_TIMEOUT_S,
    clock: Callable[[], float] | None = None,
) -> AsyncIterator[HttpEndpoint]:
    """Run ``tool_server`` over streamable HTTP in this event loop while the block runs.

    Yields the endpoint (URL and token; a random token when none is given; ``port=0``
    picks a free port, and the URL has the real one). The socket listens before the
    block starts, so clients may connect at once. uvicorn runs in a task of this
    context's own task group; on exit it is asked to stop (``should_exit``) and awaited,
    so the port and every connection are closed when the block ends. The session
    limits and ``clock`` are ``build_http_app``'s.

    Raises ConfigError for a non-loopback ``host`` without ``allow_remote`` (with it, a
    warning is logged), for an empty token, and for an address that cannot be bound.
    """
    _check_host(host, allow_remote)
    check_token(token)
    token = token or new_token()
    sock = _bind(host, port)
    with sock:
        bound = sock.getsockname()[1]
        app = build_http_app(
            tool_server,
            token=token,
            host=host,
            port=bound,
            max_sessions=max_sessions,
            session_idle_timeout_s=session_idle_timeout_s,
            clock=clock,
        )
        server = _uvicorn_server(app, host, bound)
        stopped = anyio.Event()

        async def run() -> None:
            try:
                # Not server.serve(): that swaps the process's signal handlers, and servers
                # that stop in another order than they started would restore them wrongly.
                await server._serve(sockets=[sock])
            except SystemExit:
                raise ToolServerError("the HTTP tool server failed to start (see the log above)") from None
            finally:
                stopped.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            try:
                yield HttpEndpoint(f"http://{url_host(host)}:{bound}{MCP_PATH}", token)
            finally:
                server.should_exit = True
                with anyio.CancelScope(shield=True), anyio.move_on_after(_STOP_TIMEOUT_S) as scope:
                    await stopped.wait()
                if scope.cancelled_caught:
                    logger.warning("the HTTP tool server did not stop within %.0f s", _STOP_TIMEOUT_S)
                    tg.cancel_scope.cancel()


@functools.lru_cache(maxsize=1)
def _tls() -> ssl.SSLContext:
    """One TLS context for every client: building one (loading the CA bundle) costs tens of ms.

    httpx builds it even for ``http://`` URLs, where it is never used.
    """
    return ssl.create_default_context()


@asynccontextmanager
async def _bearer_transport(url: str, token: str) -> AsyncIterator[TransportStreams]:
    headers = {"Authorization": f"Bearer {token}"}
    # The SDK's default timeouts: a response stream may stay open for a long time.
    timeout = httpx2.Timeout(30.0, read=300.0)
    async with (
        httpx2.AsyncClient(headers=headers, timeout=timeout, verify=_tls()) as client,
        streamable_http_client(url, http_client=client) as streams,
    ):
        yield streams


def http_client(url: str, token: str, **client_options: Any) -> mcp.Client:
    """An (unentered) ``mcp.Client`` for a streamable HTTP server that requires ``token``.

    ``client_options`` go to ``mcp.Client`` (``read_timeout_seconds``, ``mode``...).
    """
    return mcp.Client(_bearer_transport(url, token), **client_options)


async def serve_http(
    tool_server: ToolServer,
    *,
    token: str,
    host: str = "127.0.0.1",
    port: int = 0,
    allow_remote: bool = False,
    on_ready: Callable[[HttpEndpoint], None] | None = None,
    max_sessions: int = DEFAULT_MAX_SESSIONS,
    session_idle_timeout_s: float | None = DEFAULT_SESSION_IDLE_TIMEOUT_S,
) -> None:
    """Serve ``tool_server`` over streamable HTTP until SIGINT or SIGTERM (the command line's loop).

    ``on_ready`` receives the endpoint (with the real port) once the socket listens. On
    a signal the running statement (if any) is interrupted, the server stops gracefully
    and this returns normally. Must run in the main thread. Raises what
    ``http_tool_server`` raises.
    """
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with http_tool_server(
            tool_server,
            token=token,
            host=host,
            port=port,
            allow_remote=allow_remote,
            max_sessions=max_sessions,
            session_idle_timeout_s=session_idle_timeout_s,
        ) as endpoint:
            if on_ready is not None:
                on_ready(endpoint)
            async for signum in signals:
                logger.info("stopping on signal %s", signal.Signals(signum).name)
                tool_server.db.abort()
                break
