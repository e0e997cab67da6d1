"""Every statement has a deadline: a runaway query is interrupted, answered with ``timeout``, and stalls nothing.

The hostile environment is built here: a recursive CTE without an end, a cross join of
ten billion rows, and a write whose second statement never ends.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import sqlite3
import sys
import tempfile
import threading
from pathlib import Path
from subprocess import PIPE
from typing import Any

import anyio
import httpx2
import mcp
import mcp_types as types
import pytest
from anyio.abc import Process, SocketListener, TaskGroup
from anyio.streams.text import TextReceiveStream

from schemas import DatabaseSpec, Effect, Environment, ResultShape, SqlImplementation, ToolCall, ToolEvent, ToolSpec
from schemas.errors import ConfigError, QueryTimeoutError, ToolTimeoutError
from tests.conftest import shop_environment
from tests.toolservers.test_server import Recorder
from toolservers import (
    TRANSPORTS,
    Database,
    ToolServer,
    TransportName,
    build_tool_server,
    connect_tool_server,
    save_environment,
)
from toolservers.database import open_database
from toolservers.server import ERROR_CODE_META
from toolservers.stdio_pool import LineReader

pytestmark = pytest.mark.anyio

FOREVER = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c)"
COUNT_FOREVER = f"{FOREVER} SELECT count(*) AS n FROM c"
TEN_BILLION = (
    "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c LIMIT 100000) SELECT count(*) AS n FROM c a, c b"
)
LONG_BUT_FINITE = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c LIMIT 300000) SELECT count(*) FROM c"
NO_ARGS: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}


def _tool(name: str, statements: list[str], result: ResultShape, effect: Effect = Effect.READ) -> ToolSpec:
    return ToolSpec(
        name=name,
        description=f"{name} (hostile)",
        input_schema=NO_ARGS,
        implementation=SqlImplementation(statements=statements, result=result),
        effect=effect,
    )


def runaway_environment() -> Environment:
    shop = shop_environment()
    insert = "INSERT INTO customers (name, email, tier) VALUES ('Runaway', 'run@away.example', 'basic')"
    return Environment(
        id="runaway-shop",
        domain=shop.domain,
        database=shop.database,
        tools=[
            *shop.tools,
            _tool("count_forever", [COUNT_FOREVER], ResultShape.SCALAR),
            _tool("cross_join", [TEN_BILLION], ResultShape.SCALAR),
            _tool(
                "add_then_spin",
                [
                    insert,
                    f"UPDATE customers SET tier = 'gold' WHERE customer_id IN ({FOREVER} SELECT n FROM c WHERE n < 0)",
                ],
                ResultShape.AFFECTED,
                Effect.WRITE,
            ),
            _tool("count_far", [LONG_BUT_FINITE], ResultShape.SCALAR),
            _tool(
                "add_then_count_far",
                [insert, LONG_BUT_FINITE],
                ResultShape.SCALAR,
                Effect.WRITE,
            ),
            _tool(
                "add_many",
                [
                    "INSERT INTO customers (name, email, tier) "
                    "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c LIMIT 50000) "
                    "SELECT 'Bulk ' || n, 'bulk' || n || '@example.com', 'basic' FROM c"
                ],
                ResultShape.AFFECTED,
                Effect.WRITE,
            ),
        ],
    )


def text_of(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> TransportName:
    name: TransportName = request.param
    return name


async def test_a_runaway_read_is_answered_with_a_timeout(transport: TransportName) -> None:
    recorder = Recorder()
    async with connect_tool_server(
        runaway_environment(), transport=transport, on_event=recorder, call_timeout_s=0.5
    ) as conn:
        with anyio.fail_after(60):
            forever = await conn.client.call_tool("count_forever", {})
            cross = await conn.client.call_tool("cross_join", {})
        after = await conn.client.call_tool("get_customer", {"customer_id": 1})
        await conn.finish()
    for result in (forever, cross):
        assert result.is_error
        assert (result.meta or {})[ERROR_CODE_META] == "timeout"
        assert text_of(result).startswith("Error (timeout):")
    assert not after.is_error
    assert [r.error_code for r in recorder.results()] == ["timeout", "timeout", None]


async def test_a_runaway_write_is_rolled_back(transport: TransportName) -> None:
    async with connect_tool_server(runaway_environment(), transport=transport, call_timeout_s=0.5) as conn:
        before = conn.database.snapshot()
        with anyio.fail_after(60):
            result = await conn.client.call_tool("add_then_spin", {})
        created = await conn.client.call_tool(
            "create_customer", {"name": "Later", "email": "later@example.com", "tier": "basic"}
        )
        final = (await conn.finish()).snapshot()
    assert result.is_error and (result.meta or {})[ERROR_CODE_META] == "timeout"
    assert not created.is_error
    added = [row for row in final["customers"] if row not in before["customers"]]
    assert [row[1] for row in added] == ["Later"]  # the runaway's insert did not survive


def test_a_sync_call_is_bounded_too() -> None:
    server = build_tool_server(runaway_environment(), call_timeout_s=0.3)
    try:
        with pytest.raises(ToolTimeoutError) as caught:
            server.executor.call("count_forever", {})
        assert caught.value.code == "timeout" and caught.value.timeout_s == 0.3
        assert not server.db.conn.in_transaction
        assert server.executor.call("get_customer", {"customer_id": 1}).structured["name"] == "Ada Lovelace"
    finally:
        server.close()


async def test_queries_and_snapshots_are_bounded() -> None:
    spec = DatabaseSpec(
        ddl="CREATE TABLE big (n INTEGER PRIMARY KEY, label TEXT);"
        "INSERT INTO big SELECT value, 'row ' || value FROM "
        "(WITH RECURSIVE c(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM c LIMIT 200000) SELECT value FROM c);"
    )
    db = open_database(spec, call_timeout_s=0.3)
    try:
        with pytest.raises(QueryTimeoutError) as caught:
            db.query(COUNT_FOREVER)
        assert caught.value.timeout_s == 0.3 and not caught.value.busy
        with pytest.raises(QueryTimeoutError):
            await db.aquery(COUNT_FOREVER)
        with pytest.raises(QueryTimeoutError):
            db.snapshot(timeout_s=0.001)  # 200,000 rows to sort take far longer
        assert db.query("SELECT count(*) FROM big") == [(200000,)]
        assert len(db.snapshot(timeout_s=60)["big"]) == 200000
    finally:
        db.close()


async def test_a_runaway_stalls_neither_other_dialogues_nor_other_sessions() -> None:
    started = anyio.Event()

    async def on_event(event: ToolEvent) -> None:
        if isinstance(event, ToolCall) and event.tool == "count_forever":
            started.set()

    # A deadline far beyond the test: only an interruption ends the runaway in time.
    runaway = build_tool_server(runaway_environment(), call_timeout_s=600, on_event=on_event)
    other = build_tool_server(runaway_environment(), call_timeout_s=600)
    done: list[bool] = []
    try:
        async with mcp.Client(runaway.server) as first, mcp.Client(other.server) as neighbour:
            with anyio.fail_after(60):
                async with anyio.create_task_group() as tg:

                    async def run_away() -> None:
                        with anyio.CancelScope() as scope:
                            cancel.append(scope)
                            await first.call_tool("count_forever", {})
                        done.append(True)

                    cancel: list[anyio.CancelScope] = []
                    tg.start_soon(run_away)
                    await started.wait()
                    # The other dialogue's calls are answered while the runaway runs...
                    for i in range(20):
                        result = await neighbour.call_tool("get_customer", {"customer_id": i % 2 + 1})
                        assert not result.is_error
                    # ...and the runaway's own server takes a second session.
                    async with mcp.Client(runaway.server) as second:
                        listed = await second.list_tools()
                    assert "count_forever" in {t.name for t in listed.tools}
                    assert not done, "the runaway query ended on its own"
                    cancel[0].cancel()  # the client gives up: the statement is interrupted at once
            assert done == [True]
            # The connection is free again.
            assert not (await first.call_tool("get_customer", {"customer_id": 2})).is_error
    finally:
        runaway.close()
        other.close()


def _where_am_i(db: Database, seen: list[int]) -> None:
    def record() -> int:
        seen.append(threading.get_ident())
        return 1

    db.conn.create_function("where_am_i", 0, record)


def _finite_environment() -> Environment:
    env = runaway_environment()
    tools = [
        *env.tools,
        _tool("quick_where", ["SELECT where_am_i() AS here"], ResultShape.SCALAR),
        _tool(
            "long_where", [f"{LONG_BUT_FINITE.replace('count(*)', 'count(*) + where_am_i() - 1')}"], ResultShape.SCALAR
        ),
    ]
    return Environment(id=env.id, domain=env.domain, database=env.database, tools=tools)


async def test_fast_statements_stay_on_the_loop_and_long_ones_finish_in_a_thread() -> None:
    env = _finite_environment()
    db = open_database(env.database)
    seen: list[int] = []
    _where_am_i(db, seen)
    server = ToolServer(env, db)
    loop_thread = threading.get_ident()
    try:
        assert (await server.executor.acall("quick_where", {})).structured == {"value": 1}
        assert seen == [loop_thread]  # no thread hop for the common fast query
        seen.clear()
        db.loop_budget_s = 1e-6  # anything that reaches the progress handler overruns the budget
        assert (await server.executor.acall("long_where", {})).structured == {"value": 300000}
        assert seen and seen[-1] != loop_thread
        # A write interrupted on the loop rolled itself back and ran again once, in full.
        assert (await server.executor.acall("add_many", {})).structured == {"affected": 50000}
        # A write whose read statement overran keeps its first statement's row, once.
        assert (await server.executor.acall("add_then_count_far", {})).structured == {"value": 300000}
        assert db.query("SELECT count(*) FROM customers WHERE name LIKE 'Bulk %'") == [(50000,)]
        assert db.query("SELECT count(*) FROM customers WHERE name = 'Runaway'") == [(1,)]
        assert not db.conn.in_transaction
    finally:
        server.close()


async def test_a_write_inside_an_outer_transaction_goes_straight_to_a_thread() -> None:
    """An interrupted write would roll back a transaction someone else opened: it is never retried."""
    env = runaway_environment()
    db = open_database(env.database)
    server = ToolServer(env, db)
    try:
        db.loop_budget_s = 1e-6
        db.conn.execute("SAVEPOINT outer_work")
        with db.allowing(Effect.WRITE):
            db.conn.execute("UPDATE customers SET tier = 'gold' WHERE customer_id = 2")
        assert (await server.executor.acall("add_many", {})).structured == {"affected": 50000}
        assert db.conn.in_transaction
        db.conn.execute("ROLLBACK TO outer_work")
        db.conn.execute("RELEASE outer_work")
        assert db.query("SELECT tier FROM customers WHERE customer_id = 2") == [("basic",)]
        assert db.query("SELECT count(*) FROM customers") == [(2,)]
    finally:
        server.close()


def test_timeouts_must_be_positive(tmp_path: Path) -> None:
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="call_timeout_s"):
            open_database(shop_environment().database, call_timeout_s=bad)
    with pytest.raises(ConfigError, match="call_timeout_s"):
        Database(sqlite3.connect(":memory:"), call_timeout_s=0)


# --- stopping a server while a runaway query runs --------------------------------------

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
CALL_FOREVER = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "count_forever", "arguments": {}}}
LIST = {"jsonrpc": "2.0", "id": 3, "method": "tools/list"}
ACCEPT = "application/json, text/event-stream"


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode() + b"\n"


async def _runaway_over_stdio(process: Process, events: SocketListener, stack: contextlib.AsyncExitStack) -> None:
    """Start count_forever over the server's stdio; return once the server has begun the call."""
    assert process.stdin is not None and process.stdout is not None
    reader = LineReader(process.stdout)
    await process.stdin.send(_line(INITIALIZE))
    stream = await stack.enter_async_context(await events.accept())
    assert await reader.readline() is not None
    await process.stdin.send(_line(INITIALIZED) + _line(CALL_FOREVER))
    # The server reports the call on its events socket before it runs it, and waits for the ack.
    event_lines = LineReader(stream)
    line = await event_lines.readline()
    assert line is not None and json.loads(line)["kind"] == "tool_call"
    await stream.send(b"+")


async def _runaway_over_http(process: Process, tg: TaskGroup) -> None:
    """Start count_forever over the server's HTTP endpoint; return once the server is running it."""
    assert process.stderr is not None
    stderr = TextReceiveStream(process.stderr)
    seen: list[str] = []
    while not any("serving MCP tools at" in line for line in seen):
        seen.extend((await stderr.receive()).splitlines())
    url = next(line for line in seen if "serving MCP tools at" in line).rsplit(" ", 1)[1]
    http = httpx2.AsyncClient(timeout=httpx2.Timeout(30.0, read=600.0))
    headers = {"Authorization": "Bearer t0ken", "Accept": ACCEPT}
    opened = await http.post(url, json=INITIALIZE, headers=headers)
    headers["mcp-session-id"] = opened.headers["mcp-session-id"]
    await http.post(url, json=INITIALIZED, headers=headers)
    dispatched = anyio.Event()

    async def call() -> None:
        try:
            async with http.stream("POST", url, json=CALL_FOREVER, headers=headers) as response:
                dispatched.set()
                with contextlib.suppress(httpx2.HTTPError):
                    await response.aread()
        except httpx2.HTTPError:
            dispatched.set()
        finally:
            await http.aclose()

    tg.start_soon(call)
    await dispatched.wait()
    # Answered only once the loop got past the call's start: the statement is running.
    async with httpx2.AsyncClient() as probe:
        listed = await probe.post(url, json=LIST, headers=headers)
    assert listed.status_code == 200


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("served_over", ["stdio", "http"])
async def test_tools_serve_stops_on_a_signal_while_a_runaway_query_runs(
    tmp_path: Path, served_over: str, signum: signal.Signals
) -> None:
    env_file = tmp_path / "runaway.json"
    save_environment(runaway_environment(), env_file)
    command = [sys.executable, "-m", "simulator", "tools", "serve", "--environment", str(env_file)]
    command += ["--call-timeout", "600"]  # only an interruption can end the call in time
    sock_dir = Path(tempfile.mkdtemp(prefix="dlg-", dir="/tmp"))
    try:
        async with contextlib.AsyncExitStack() as stack:
            listener: SocketListener | None = None
            if served_over == "stdio":
                listener = await anyio.create_unix_listener(sock_dir / "events.sock")
                await stack.enter_async_context(listener)
                command += ["--transport", "stdio", "--events", f"unix:{sock_dir / 'events.sock'}"]
            else:
                command += ["--transport", "http", "--port", "0", "--token", "t0ken"]
            process = await anyio.open_process(command, stdin=PIPE, stdout=PIPE, stderr=PIPE)
            await stack.enter_async_context(process)
            stack.callback(lambda: process.returncode is None and process.kill())
            async with anyio.create_task_group() as tg:
                with anyio.fail_after(120):
                    if listener is not None:
                        await _runaway_over_stdio(process, listener, stack)
                    else:
                        await _runaway_over_http(process, tg)
                process.send_signal(signum)
                with anyio.fail_after(20):  # a few seconds, not the call's 600 s
                    code = await process.wait()
                tg.cancel_scope.cancel()
    finally:
        shutil.rmtree(sock_dir, ignore_errors=True)
    assert code == 0


async def test_callers_wait_for_a_busy_database_within_their_own_deadline() -> None:
    server = build_tool_server(runaway_environment(), call_timeout_s=600)
    try:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(server.executor.acall, "count_forever", {})
                while not server.db.busy:  # the runaway has left the loop for a worker thread
                    await anyio.lowlevel.checkpoint()
                with pytest.raises(QueryTimeoutError) as blocking:
                    server.db.query("SELECT 1", timeout_s=0.05)
                with pytest.raises(QueryTimeoutError) as waiting:
                    await server.db.aquery("SELECT 1", timeout_s=0.05)
                server.db.call_timeout_s = 0.05
                with pytest.raises(ToolTimeoutError, match="busy"):
                    await server.executor.acall("get_customer", {"customer_id": 1})
                tg.cancel_scope.cancel()
        assert blocking.value.busy and waiting.value.busy
        assert not server.db.busy
        assert server.db.query("SELECT count(*) FROM customers") == [(2,)]
    finally:
        server.close()
