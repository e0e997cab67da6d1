"""Streamable HTTP on loopback: a bearer-token guard, a uvicorn runner and a client helper.

Every request must carry ``Authorization: Bearer <token>`` (401 with a JSON body
otherwise); the SDK's transport security rejects Host headers other than loopback ones
(DNS rebinding). Binding to another address needs ``allow_remote``.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
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
from mcp.server.transport_security import TransportSecuritySettings
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from schemas.errors import ConfigError
from toolservers.server import ToolServer

__all__ = [
    "HttpEndpoint",
    "build_http_app",
    "http_client",
    "http_tool_server",
    "is_loopback",
    "new_token",
    "serve_http",
]

logger = logging.getLogger(__name__)

MCP_PATH = "/mcp"
_LOOPBACK_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
_LOOPBACK_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
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


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


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


def build_http_app(tool_server: ToolServer, *, token: str, host: str = "127.0.0.1") -> ASGIApp:
    """The ASGI app serving ``tool_server`` at ``/mcp`` behind the bearer-token guard.

    On a loopback ``host`` only loopback Host/Origin headers are accepted. On a specific
    remote address that address is accepted too; on a wildcard address (``0.0.0.0``,
    ``::``) the Host check is off and only the token protects the server.

    Each call creates a new MCP session manager on ``tool_server.server``; serve one app
    per tool server at a time.
    """
    if not token:
        raise ValueError("an HTTP tool server needs a non-empty token")
    security: TransportSecuritySettings
    if is_loopback(host):
        security = TransportSecuritySettings(allowed_hosts=_LOOPBACK_HOSTS, allowed_origins=_LOOPBACK_ORIGINS)
    elif _is_wildcard(host):
        security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    else:
        shown = _url_host(host)
        security = TransportSecuritySettings(
            allowed_hosts=[*_LOOPBACK_HOSTS, f"{shown}:*"],
            allowed_origins=[*_LOOPBACK_ORIGINS, f"http://{shown}:*"],
        )
    app = tool_server.server.streamable_http_app(streamable_http_path=MCP_PATH, transport_security=security, host=host)
    return _BearerAuth(app, token)


def _is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


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
        raise ConfigError(f"cannot listen on {_url_host(bare)}:{port}: {exc.strerror or exc}") from None
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
) -> AsyncIterator[HttpEndpoint]:
    """Run ``tool_server`` over streamable HTTP in this event loop while the block runs.

    Yields the endpoint (URL and token; a random token when none is given; ``port=0``
    picks a free port, and the URL has the real one). The socket listens before the
    block starts, so clients may connect at once. uvicorn runs in a task of this
    context's own task group; on exit it is asked to stop (``should_exit``) and awaited,
    so the port and every connection are closed when the block ends.

    Raises ConfigError for a non-loopback ``host`` without ``allow_remote`` (with it, a
    warning is logged) and for an address that cannot be bound.
    """
    _check_host(host, allow_remote)
    token = token or new_token()
    app = build_http_app(tool_server, token=token, host=host)
    sock = _bind(host, port)
    with sock:
        bound = sock.getsockname()[1]
        server = _uvicorn_server(app, host, bound)
        stopped = anyio.Event()

        async def run() -> None:
            try:
                # Not server.serve(): that swaps the process's signal handlers, and servers
                # that stop in another order than they started would restore them wrongly.
                await server._serve(sockets=[sock])
            except SystemExit:
                raise RuntimeError("the HTTP tool server failed to start (see the log above)") from None
            finally:
                stopped.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            try:
                yield HttpEndpoint(f"http://{_url_host(host.strip('[]'))}:{bound}{MCP_PATH}", token)
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
) -> None:
    """Serve ``tool_server`` over streamable HTTP until SIGINT or SIGTERM (the command line's loop).

    ``on_ready`` receives the endpoint (with the real port) once the socket listens. On
    a signal the server stops gracefully and this returns normally. Must run in the main
    thread. Raises what ``http_tool_server`` raises.
    """
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with http_tool_server(
            tool_server, token=token, host=host, port=port, allow_remote=allow_remote
        ) as endpoint:
            if on_ready is not None:
                on_ready(endpoint)
            async for signum in signals:
                logger.info("stopping on signal %s", signal.Signals(signum).name)
                break
