"""The loopback tool host: many dialogues' servers at their own paths, tokens and databases."""

from __future__ import annotations

import httpx2
import mcp
import pytest
from mcp import StdioServerParameters

from schemas import Environment, ToolCall, ToolEvent, ToolResult
from schemas.errors import UsageError
from toolservers import EventCallback, build_tool_server, http_client
from toolservers.host import ToolHost

pytestmark = pytest.mark.anyio

_INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
_ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


async def test_each_mount_serves_its_own_database_and_reports_every_call(shop_env: Environment) -> None:
    seen: dict[str, list[ToolEvent]] = {"a": [], "b": []}

    def recorder(name: str) -> EventCallback:
        async def record(event: ToolEvent) -> None:
            seen[name].append(event)

        return record

    a = build_tool_server(shop_env, on_event=recorder("a"), dialogue_id="a")
    b = build_tool_server(shop_env, on_event=recorder("b"), dialogue_id="b")
    try:
        async with ToolHost() as host:
            async with host.mount(a, name="shop/a 1") as ma, host.mount(b, name="shop/a 1") as mb:
                assert ma.url == f"{host.base_url}/d/shop-a-1/mcp"
                assert mb.url == f"{host.base_url}/d/shop-a-1-2/mcp"  # names are made unique
                assert ma.token != mb.token and host.mounted == 2
                async with http_client(ma.url, ma.token) as client:
                    listed = await client.list_tools()
                    assert {t.name for t in listed.tools} == {t.name for t in shop_env.tools}
                    result = await client.call_tool("update_order_status", {"order_id": 10, "status": "cancelled"})
                    assert not result.is_error
                    bad = await client.call_tool("update_order_status", {"order_id": "ten", "status": "cancelled"})
                    assert bad.is_error
                # The stdio relay reaches the same server: same database, same recording.
                assert ma.stdio is not None
                params = StdioServerParameters(command=ma.stdio.command, args=ma.stdio.args)
                async with mcp.Client(params) as relayed:
                    got = await relayed.call_tool("get_customer", {"customer_id": 2})
                    assert not got.is_error and "Alan Turing" in got.content[0].text  # type: ignore[union-attr]
            assert host.mounted == 0
        assert a.db.query("SELECT status FROM orders WHERE order_id = 10") == [("cancelled",)]
        assert b.db.query("SELECT status FROM orders WHERE order_id = 10") == [("placed",)]
    finally:
        a.close()
        b.close()
    assert seen["b"] == []
    kinds = [(type(e).__name__, e.call_id, e.dialogue_id) for e in seen["a"]]
    assert kinds == [(kind, f"call_000{n}", "a") for n in (1, 2, 3) for kind in ("ToolCall", "ToolResult")]
    error = seen["a"][3]
    assert isinstance(error, ToolResult) and error.is_error and error.error_code == "invalid_arguments"
    assert isinstance(seen["a"][4], ToolCall) and seen["a"][4].tool == "get_customer"


async def test_wrong_tokens_unknown_paths_and_foreign_hosts_are_refused(shop_env: Environment) -> None:
    a = build_tool_server(shop_env, dialogue_id="a")
    b = build_tool_server(shop_env, dialogue_id="b")
    try:
        async with ToolHost(stdio=False) as host, host.mount(a) as ma, host.mount(b) as mb:
            assert ma.stdio is None
            async with httpx2.AsyncClient() as http:
                for auth in (
                    {},
                    {"Authorization": "Bearer wrong"},
                    {"Authorization": f"Bearer {mb.token}"},
                    {"Authorization": ma.token},
                ):
                    refused = await http.post(ma.url, json=_INITIALIZE, headers={**_ACCEPT, **auth})
                    assert refused.status_code == 401
                    assert refused.headers["www-authenticate"].startswith("Bearer")
                    assert refused.json()["error"] == "unauthorized"
                mine = {**_ACCEPT, "Authorization": f"Bearer {ma.token}"}
                assert (await http.post(ma.url, json=_INITIALIZE, headers=mine)).status_code == 200
                unknown = await http.post(f"{host.base_url}/d/nobody/mcp", json=_INITIALIZE, headers=mine)
                assert unknown.status_code == 404
                foreign = await http.post(ma.url, json=_INITIALIZE, headers={**mine, "Host": "evil.example"})
                assert foreign.status_code == 421
            # The official client with a wrong token gets no session.
            with pytest.raises(ExceptionGroup) as caught:
                async with http_client(ma.url, mb.token) as client:
                    await client.list_tools()
            assert caught.group_contains(mcp.MCPError)
            assert a.db.snapshot() == b.db.snapshot()
        async with ToolHost(stdio=False) as host:
            async with host.mount(a) as again:
                url = again.url
            async with httpx2.AsyncClient() as http:
                gone = await http.post(
                    url, json=_INITIALIZE, headers={**_ACCEPT, "Authorization": f"Bearer {again.token}"}
                )
                assert gone.status_code == 404
    finally:
        a.close()
        b.close()


async def test_mounting_needs_a_running_host(shop_env: Environment) -> None:
    server = build_tool_server(shop_env)
    try:
        with pytest.raises(UsageError):
            async with ToolHost().mount(server):
                pass
    finally:
        server.close()
