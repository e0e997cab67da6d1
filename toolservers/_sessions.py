"""What stands in front of an MCP session manager over HTTP: an exact Host check and session limits.

``HostCheck`` accepts a ``Host`` header only when it names this server exactly: one of
the loopback names (``127.0.0.1``, ``localhost``, ``[::1]``, or the bound address) and
the real port, nothing after it (``localhost:PORT@evil.com`` is refused with 421); an
``Origin`` the same way (403). On a wildcard address it checks nothing.

``SessionGate`` caps the live sessions of one server (``max_sessions``, 256 by
default): a request that would open one more is answered 503 with ``Retry-After``.
A session with no request in flight (an open GET stream counts as one) for
``idle_timeout_s`` (300 s by default) is ended, as a client's DELETE would end it, and
the SDK lets go of it. The gate notices idle sessions whenever a new one is opened and
every ``idle_timeout_s / 4`` (at most 30 s) while ``running()``; its clock can be
replaced (tests).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schemas.errors import ConfigError

__all__ = [
    "DEFAULT_MAX_SESSIONS",
    "DEFAULT_SESSION_IDLE_TIMEOUT_S",
    "RETRY_AFTER_S",
    "HostCheck",
    "SessionGate",
    "is_loopback",
    "url_host",
]

logger = logging.getLogger(f"dialogsim.{__name__}")

#: Live MCP sessions one HTTP server keeps at most.
DEFAULT_MAX_SESSIONS = 256
#: Seconds a session may go without a request before it is ended.
DEFAULT_SESSION_IDLE_TIMEOUT_S = 300.0
#: What a refused client is told to wait before trying again.
RETRY_AFTER_S = 5
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
_SESSION_HEADER = MCP_SESSION_ID_HEADER.lower().encode()


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    """Whether ``host`` is an address that listens everywhere (``0.0.0.0``, ``::``)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def url_host(host: str) -> str:
    """``host`` as it appears in a URL or a Host header (IPv6 in brackets)."""
    bare = host.strip("[]")
    return f"[{bare}]" if ":" in bare else bare


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None


class HostCheck:
    """ASGI middleware: refuse a Host (421) or Origin (403) that does not name this server exactly.

    ``host`` is the address the server is bound to and ``port`` its real port (None:
    any port, still only digits). On a wildcard ``host`` nothing is checked.
    """

    def __init__(self, app: ASGIApp, *, host: str, port: int | None) -> None:
        self.app = app
        self.port = port
        names = {*_LOOPBACK_NAMES, url_host(host).lower()}
        self.names: frozenset[str] | None = None if is_wildcard(host) else frozenset(names)

    def accepts(self, authority: str) -> bool:
        """Whether ``authority`` (``name:port``) is one of this server's own."""
        if self.names is None:
            return True
        name, sep, port = authority.rpartition(":")
        if authority.endswith("]") or not sep:  # no port: only for port 80
            name, port = authority, "80"
        if name.lower() not in self.names or not (port.isascii() and port.isdigit()):
            return False
        return self.port is None or int(port) == self.port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.names is not None:
            host = _header(scope, b"host")
            if host is None or not self.accepts(host):
                expected = ", ".join(
                    f"{n}:{self.port if self.port is not None else 'PORT'}" for n in sorted(self.names)
                )
                response = JSONResponse(
                    {
                        "error": "misdirected",
                        "message": f"Host {host!r} is not this server; expected one of: {expected}",
                    },
                    status_code=421,
                )
                await response(scope, receive, send)
                return
            origin = _header(scope, b"origin")
            if origin is not None and not (origin.startswith("http://") and self.accepts(origin[len("http://") :])):
                response = JSONResponse(
                    {"error": "forbidden_origin", "message": f"Origin {origin!r} may not use this server"},
                    status_code=403,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


@dataclass(slots=True)
class _Live:
    last: float
    in_flight: int = 0


class SessionGate:
    """An ASGI app in front of ``manager``: a cap on live sessions and an idle timeout.

    ``idle_timeout_s`` None keeps idle sessions. ``clock`` gives the time in seconds
    (``time.monotonic`` unless replaced). Run ``running()`` around serving: it runs the
    manager and the periodic expiry.
    """

    def __init__(
        self,
        manager: StreamableHTTPSessionManager,
        *,
        path: str,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        idle_timeout_s: float | None = DEFAULT_SESSION_IDLE_TIMEOUT_S,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if max_sessions < 1:
            raise ConfigError(f"max_sessions: expected at least 1, got {max_sessions}")
        if idle_timeout_s is not None and not (math.isfinite(idle_timeout_s) and idle_timeout_s > 0):
            raise ConfigError(f"session_idle_timeout_s: expected a positive number of seconds, got {idle_timeout_s}")
        self.manager = manager
        self.path = path
        self.max_sessions = max_sessions
        self.idle_timeout_s = idle_timeout_s
        self.clock = clock or time.monotonic
        self._sessions: dict[str, _Live] = {}

    @property
    def live(self) -> int:
        """Sessions open now, as far as this gate has seen."""
        return len(self._sessions)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the session manager and the periodic expiry while the block runs."""
        async with self.manager.run(), anyio.create_task_group() as tg:
            if self.idle_timeout_s is not None:
                tg.start_soon(self._expire_periodically, min(30.0, self.idle_timeout_s / 4))
            try:
                yield
            finally:
                tg.cancel_scope.cancel()
                self._sessions.clear()

    async def _expire_periodically(self, interval: float) -> None:
        while True:
            await anyio.sleep(interval)
            await self.expire_idle()

    async def expire_idle(self) -> int:
        """End every session idle for longer than the timeout; how many were ended."""
        if self.idle_timeout_s is None:
            return 0
        cutoff = self.clock() - self.idle_timeout_s
        idle = [sid for sid, live in self._sessions.items() if live.in_flight == 0 and live.last < cutoff]
        for sid in idle:
            await self._end(sid)
        if idle:
            logger.info("ended %d MCP sessions idle for more than %g s", len(idle), self.idle_timeout_s)
        return len(idle)

    async def _end(self, sid: str) -> None:
        """End a session exactly as a client's DELETE does, so the SDK terminates and forgets it."""
        self._sessions.pop(sid, None)
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "DELETE",
            "scheme": "http",
            "path": self.path,
            "raw_path": self.path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [(_SESSION_HEADER, sid.encode())],
            "client": None,
            "server": None,
        }
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}

        async def discard(_message: Message) -> None:
            return None

        with anyio.CancelScope(shield=True):
            await self.manager.handle_request(scope, receive, discard)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sid = _header(scope, _SESSION_HEADER)
        if sid is None:
            await self._open(scope, receive, send)
            return
        live = self._sessions.get(sid)
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        if live is not None:
            live.in_flight += 1
        try:
            await self.manager.handle_request(scope, receive, watch)
        finally:
            if live is not None:
                live.in_flight -= 1
                live.last = self.clock()
            ended = scope.get("method") == "DELETE" and 200 <= status < 300
            if status == 404 or ended:
                self._sessions.pop(sid, None)

    async def _open(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.expire_idle()
        if len(self._sessions) >= self.max_sessions:
            await self._refuse(scope, receive, send)
            return
        opened: list[str] = []

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                if status < 400:
                    sid = next((v.decode("latin-1") for k, v in headers if k.lower() == _SESSION_HEADER), None)
                    if sid is not None:
                        self._sessions[sid] = _Live(self.clock(), in_flight=1)
                        opened.append(sid)
                elif status == 503 and not any(k.lower() == b"retry-after" for k, _ in headers):
                    # The SDK's own limit (a race past ours): tell the client when to retry.
                    message = {**message, "headers": [*headers, (b"retry-after", str(RETRY_AFTER_S).encode())]}
            await send(message)

        try:
            await self.manager.handle_request(scope, receive, watch)
        finally:
            for sid in opened:
                live = self._sessions.get(sid)
                if live is not None:
                    live.in_flight -= 1
                    live.last = self.clock()

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        timeout = f"; idle ones end after {self.idle_timeout_s:g} s" if self.idle_timeout_s is not None else ""
        response = JSONResponse(
            {
                "error": "too_many_sessions",
                "message": f"this server already has {self.max_sessions} open MCP sessions (its limit){timeout}; "
                "end one (DELETE) or retry later",
            },
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
        await response(scope, receive, send)
        logger.warning("refused a new MCP session: %d are open (the limit)", self.max_sessions)
