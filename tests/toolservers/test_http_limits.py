"""HTTP servers under abuse: hundreds of sessions, idle sessions, forged Host headers, an empty token.

Every test talks to a real uvicorn server on loopback with raw HTTP requests (httpx2),
so what is checked is what a client sees on the wire.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from schemas.errors import ConfigError
from tests.conftest import shop_environment
from toolservers import build_tool_server, http_tool_server, save_environment
from toolservers._sessions import DEFAULT_MAX_SESSIONS, RETRY_AFTER_S, HostCheck
from toolservers.host import ToolHost

pytestmark = pytest.mark.anyio

TOKEN = "limits-token"
ACCEPT = "application/json, text/event-stream"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}


class FakeClock:
    """A clock the test moves by hand: idle timeouts pass without waiting for them."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@asynccontextmanager
async def serving(**options: Any) -> AsyncIterator[tuple[str, httpx2.AsyncClient]]:
    tool_server = build_tool_server(shop_environment())
    try:
        async with (
            http_tool_server(tool_server, token=TOKEN, **options) as endpoint,
            httpx2.AsyncClient(timeout=30) as http,
        ):
            yield endpoint.url, http
    finally:
        tool_server.close()


def _headers(session: str | None = None, **extra: str) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": ACCEPT, **extra}
    if session is not None:
        headers["mcp-session-id"] = session
    return headers


async def _open(http: httpx2.AsyncClient, url: str) -> httpx2.Response:
    return await http.post(url, json=INITIALIZE, headers=_headers())


async def test_live_sessions_are_capped_with_retry_after() -> None:
    attempts = DEFAULT_MAX_SESSIONS + 50
    async with serving() as (url, http):
        answers = [await _open(http, url) for _ in range(attempts)]
        opened = [a.headers["mcp-session-id"] for a in answers if a.status_code == 200]
        refused = [a for a in answers if a.status_code != 200]
        assert len(opened) == DEFAULT_MAX_SESSIONS
        assert len(refused) == attempts - DEFAULT_MAX_SESSIONS
        assert {a.status_code for a in refused} == {503}
        assert {a.headers["retry-after"] for a in refused} == {str(RETRY_AFTER_S)}
        assert refused[0].json()["error"] == "too_many_sessions"
        # Existing sessions still work, and ending one makes room for a new one.
        listed = await http.post(url, json=LIST, headers=_headers(opened[-1]))
        assert listed.status_code == 200
        assert (await http.delete(url, headers=_headers(opened[0]))).status_code == 200
        assert (await http.post(url, json=LIST, headers=_headers(opened[0]))).status_code == 404
        assert (await _open(http, url)).status_code == 200
        assert (await _open(http, url)).status_code == 503


async def test_idle_sessions_expire_and_are_released() -> None:
    clock = FakeClock()
    async with serving(max_sessions=10, session_idle_timeout_s=300, clock=clock) as (url, http):
        sessions = [(await _open(http, url)).headers["mcp-session-id"] for _ in range(10)]
        assert (await _open(http, url)).status_code == 503
        clock.advance(200)
        active = sessions[0]
        assert (await http.post(url, json=LIST, headers=_headers(active))).status_code == 200  # still used
        clock.advance(101)  # the other nine have been idle for 301 s
        fresh = await _open(http, url)  # opening a session ends the idle ones first
        assert fresh.status_code == 200
        for sid in sessions[1:]:
            # The SDK no longer holds them: their ids are unknown to it.
            assert (await http.post(url, json=LIST, headers=_headers(sid))).status_code == 404
        assert (await http.post(url, json=LIST, headers=_headers(active))).status_code == 200
        more = [await _open(http, url) for _ in range(9)]
        assert [m.status_code for m in more] == [200] * 8 + [503]


async def test_the_host_header_must_name_this_server_exactly() -> None:
    async with serving() as (url, http):
        port = int(url.split(":")[2].split("/")[0])

        async def status(**headers: str) -> int:
            return (await http.post(url, json=INITIALIZE, headers=_headers(**headers))).status_code

        for good in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", f"[::1]:{port}"):
            assert await status(Host=good) == 200, good
        for forged in (
            f"localhost:{port}@evil.com",
            f"localhost:{port}.evil.com",
            f"127.0.0.1:{port} evil",
            f"localhost:{port + 1}",
            "localhost",
            "evil.com",
            f"evil.com:{port}",
            f"127.0.0.1.evil.com:{port}",
        ):
            assert await status(Host=forged) == 421, forged
        assert await status(Origin=f"http://localhost:{port}") == 200
        for origin in (f"http://localhost:{port}@evil.com", "http://evil.com", f"https://evil.com:{port}", "null"):
            assert await status(Origin=origin) == 403, origin


async def test_a_tool_host_checks_hosts_and_caps_each_mount() -> None:
    tool_server = build_tool_server(shop_environment())
    try:
        async with ToolHost(stdio=False, max_sessions=3) as host, host.mount(tool_server, name="d1") as mount:
            port = int(host.base_url.rsplit(":", 1)[1])
            headers = {"Authorization": f"Bearer {mount.token}", "Accept": ACCEPT}
            async with httpx2.AsyncClient(timeout=30) as http:
                forged = await http.post(
                    mount.url, json=INITIALIZE, headers={**headers, "Host": f"localhost:{port}@evil.com"}
                )
                answers = [await http.post(mount.url, json=INITIALIZE, headers=headers) for _ in range(5)]
        assert forged.status_code == 421
        assert [a.status_code for a in answers] == [200, 200, 200, 503, 503]
        assert answers[-1].headers["retry-after"] == str(RETRY_AFTER_S)
    finally:
        tool_server.close()


async def test_an_empty_token_is_refused_before_serving() -> None:
    tool_server = build_tool_server(shop_environment())
    try:
        for empty in ("", "   "):
            with pytest.raises(ConfigError, match="--token"):
                async with http_tool_server(tool_server, token=empty):
                    pass
    finally:
        tool_server.close()


def test_cli_refuses_an_empty_token(tmp_path: Path) -> None:
    env_file = tmp_path / "shop.json"
    save_environment(shop_environment(), env_file)
    command = [sys.executable, "-m", "simulator", "tools", "serve", "--environment", str(env_file)]
    done = subprocess.run(
        [*command, "--transport", "http", "--port", "0", "--token", ""],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,  # before: it served (refusing everything) until killed
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--token" in lines[0] and "empty" in lines[0]


@pytest.mark.parametrize(
    "flags",
    [["--max-sessions", "0"], ["--session-idle-timeout", "0"], ["--call-timeout", "-1"], ["--call-timeout", "nan"]],
)
def test_cli_refuses_bad_limits(tmp_path: Path, flags: list[str]) -> None:
    env_file = tmp_path / "shop.json"
    save_environment(shop_environment(), env_file)
    command = [sys.executable, "-m", "simulator", "tools", "serve", "--environment", str(env_file)]
    done = subprocess.run(
        [*command, "--transport", "http", *flags], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert flags[0] in done.stderr and len(done.stderr.strip().splitlines()) == 1


async def test_sessions_of_a_real_client_are_not_expired_while_used() -> None:
    from toolservers import http_client

    clock = FakeClock()
    tool_server = build_tool_server(shop_environment())
    try:
        async with http_tool_server(tool_server, token=TOKEN, session_idle_timeout_s=300, clock=clock) as endpoint:
            async with http_client(endpoint.url, TOKEN) as client:
                for _ in range(3):
                    clock.advance(250)
                    with anyio.fail_after(30):
                        assert not (await client.call_tool("get_customer", {"customer_id": 1})).is_error
    finally:
        tool_server.close()


def test_host_check_accepts_exactly_the_servers_own_names() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        return None

    loopback = HostCheck(app, host="127.0.0.2", port=8000)
    assert all(loopback.accepts(h) for h in ("127.0.0.2:8000", "127.0.0.1:8000", "localhost:8000", "[::1]:8000"))
    assert not any(loopback.accepts(h) for h in ("127.0.0.2:8001", "127.0.0.2", "127.0.0.2:8000@x", "x:8000"))
    remote = HostCheck(app, host="192.0.2.7", port=9000)
    assert remote.accepts("192.0.2.7:9000") and remote.accepts("localhost:9000")
    assert not remote.accepts("192.0.2.8:9000")
    assert HostCheck(app, host="0.0.0.0", port=9000).accepts("anything.example:1")  # only the token protects it
    assert HostCheck(app, host="::1", port=80).accepts("[::1]")  # no port: the default one
