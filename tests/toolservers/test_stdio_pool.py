"""The pool of pre-started stdio tool servers."""

from __future__ import annotations

from pathlib import Path

import mcp
import msgspec
import pytest
from mcp import StdioServerParameters

from schemas import DatabaseSpec, Environment, ToolEvent, ToolResult
from schemas.errors import ConfigError, UsageError
from toolservers.stdio_pool import StdioPool

pytestmark = pytest.mark.anyio

STATUS = "SELECT status FROM orders WHERE order_id = 10"


async def test_a_warm_worker_serves_one_dialogue_and_its_relay(shop_env: Environment, tmp_path: Path) -> None:
    events: list[ToolEvent] = []

    async def record(event: ToolEvent) -> None:
        events.append(event)

    async with StdioPool(1, total=2) as pool:
        await pool.wait_warm()
        assert pool.idle == 1
        async with pool.connect(shop_env, on_event=record, dialogue_id="p1") as conn:
            assert conn.transport == "stdio" and conn.stdio is not None
            listed = await conn.client.list_tools()
            assert {t.name for t in listed.tools} == {t.name for t in shop_env.tools}
            done = await conn.client.call_tool("update_order_status", {"order_id": 10, "status": "cancelled"})
            assert not done.is_error
            assert conn.database.query(STATUS) == [("cancelled",)]  # the live file, read-only
            bad = await conn.client.call_tool("get_customer", {"customer_id": "one"})
            assert bad.is_error
            # An agent spawning the relay gets another session on the same running worker.
            relay = StdioServerParameters(command=conn.stdio.command, args=conn.stdio.args)
            async with mcp.Client(relay) as other:
                got = await other.call_tool("get_customer", {"customer_id": 1})
                assert not got.is_error
            final = await conn.finish()
            assert final.query(STATUS) == [("cancelled",)]
        assert [(type(e).__name__, e.call_id, e.dialogue_id) for e in events] == [
            (kind, f"call_000{n}", "p1") for n in (1, 2, 3) for kind in ("ToolCall", "ToolResult")
        ]
        error = events[3]
        assert isinstance(error, ToolResult) and error.error_code == "invalid_arguments"

        # The next dialogue gets the next worker and its own copy of the database.
        async with pool.connect(shop_env, dialogue_id="p2") as fresh:
            assert fresh.database.query(STATUS) == [("placed",)]
            await fresh.finish()

        # A bad database is refused before a worker is taken.
        broken = msgspec.structs.replace(shop_env, database=DatabaseSpec(path=str(tmp_path / "missing.sqlite")))
        with pytest.raises(ConfigError):
            async with pool.connect(broken):
                pass
    assert pool.idle == 0


async def test_connect_needs_an_entered_pool(shop_env: Environment) -> None:
    with pytest.raises(UsageError):
        async with StdioPool(1).connect(shop_env):
            pass
    with pytest.raises(UsageError):
        StdioPool(0)


async def test_a_worker_rehearses_a_whole_session_before_it_is_on_offer(shop_env: Environment) -> None:
    # The warm-up swallows its errors (a worker still starts without it); this is what
    # shows that it really runs its session, so the first dialogue does not pay for it.
    from toolservers._pool_worker import _rehearse
    from toolservers.server import build_tool_server

    servers = [build_tool_server(shop_env), build_tool_server(shop_env)]
    try:
        assert await _rehearse(servers) == [len(shop_env.tools)] * 2
    finally:
        for server in servers:
            server.close()
