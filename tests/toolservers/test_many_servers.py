"""Hundreds of servers in one process: nothing leaks (descriptors, tasks, objects, memory).

Every measurement is taken after a warm-up batch, so first-use allocations (imports,
caches, pydantic schemas) cannot make a test fail.
"""

from __future__ import annotations

import asyncio
import gc
import os
import weakref

import anyio
import mcp
import psutil
import pytest

from schemas import ToolEvent
from tests.conftest import shop_environment
from toolservers import TransportName, build_tool_server, connect_tool_server

pytestmark = pytest.mark.anyio

# Descriptors the event loop or the interpreter may open lazily (selector, self-pipe, /dev/urandom).
FD_TOLERANCE = 4
# RSS is noisy (allocator arenas, fragmentation); a leaked server costs far more than this over 300.
RSS_TOLERANCE_BYTES = 24 * 1024 * 1024


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def other_tasks() -> set[asyncio.Task[object]]:
    return asyncio.all_tasks() - {asyncio.current_task()}


def settle() -> None:
    gc.collect()
    gc.collect()


async def _ignore(_event: ToolEvent) -> None:
    return None


async def use_in_process(refs: list[weakref.ref[object]]) -> None:
    tool_server = build_tool_server(shop_environment(), on_event=_ignore)
    try:
        client = mcp.Client(tool_server.server)
        async with client:
            await client.list_tools()
            assert not (await client.call_tool("get_customer", {"customer_id": 1})).is_error
            created = await client.call_tool("create_customer", {"name": "A", "email": "a@x", "tier": "gold"})
            assert not created.is_error
            assert (await client.call_tool("get_customer", {"customer_id": "x"})).is_error
        refs += [weakref.ref(tool_server), weakref.ref(client), weakref.ref(tool_server.db)]
    finally:
        tool_server.close()


async def test_300_in_process_servers_leak_nothing() -> None:
    process = psutil.Process()
    warm: list[weakref.ref[object]] = []
    for _ in range(30):
        await use_in_process(warm)
    settle()
    fds, tasks, rss = open_fds(), other_tasks(), process.memory_info().rss

    refs: list[weakref.ref[object]] = []
    for _ in range(300):
        await use_in_process(refs)
    settle()

    assert open_fds() <= fds + FD_TOLERANCE
    assert other_tasks() == tasks
    alive = [r() for r in refs if r() is not None]
    assert alive == []
    assert process.memory_info().rss - rss < RSS_TOLERANCE_BYTES


async def _use_connected(transport: TransportName) -> None:
    events: list[ToolEvent] = []

    async def on_event(event: ToolEvent) -> None:
        events.append(event)

    async with connect_tool_server(shop_environment(), transport=transport, on_event=on_event) as conn:
        await conn.client.list_tools()
        assert not (await conn.client.call_tool("get_customer", {"customer_id": 2})).is_error
        created = await conn.client.call_tool("create_customer", {"name": "B", "email": "b@x", "tier": "basic"})
        assert not created.is_error
        final = await conn.finish()
        assert len(final.snapshot()["customers"]) == 3
    assert len(events) == 4


async def _batch(transport: TransportName, count: int, concurrency: int) -> None:
    limiter = anyio.CapacityLimiter(concurrency)

    async def one() -> None:
        async with limiter:
            await _use_connected(transport)

    async with anyio.create_task_group() as tg:
        for _ in range(count):
            tg.start_soon(one)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("transport", "count", "concurrency"),
    [pytest.param("http", 20, 4, id="http"), pytest.param("stdio", 8, 2, id="stdio")],
)
async def test_servers_over_a_transport_leak_nothing(transport: TransportName, count: int, concurrency: int) -> None:
    await _batch(transport, concurrency, concurrency)  # warm-up
    settle()
    fds, tasks = open_fds(), other_tasks()
    me = psutil.Process()

    await _batch(transport, count, concurrency)
    settle()

    assert open_fds() <= fds + FD_TOLERANCE
    assert other_tasks() == tasks
    assert me.children(recursive=True) == []


def test_fd_counter_sees_new_descriptors() -> None:
    before = open_fds()
    with open(os.devnull) as fh:
        assert open_fds() == before + 1
        assert not fh.closed


async def test_leak_check_would_catch_a_leak() -> None:
    """The weakref check is not vacuous: a server kept alive is reported."""
    kept: list[object] = []
    refs: list[weakref.ref[object]] = []
    await use_in_process(refs)
    kept.append(refs[0]())
    settle()
    assert [r for r in refs if r() is not None] != []
    kept.clear()
    settle()
    assert [r for r in refs if r() is not None] == []
