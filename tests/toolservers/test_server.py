"""The tool server's behaviour, the same over every transport (in process, stdio, HTTP)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from anyio.abc import Process
from anyio.streams.text import TextReceiveStream
from mcp.shared.exceptions import MCPError

from schemas import Effect, Environment, ErrorEvent, SqlImplementation, ToolCall, ToolEvent, ToolResult, ToolSpec
from schemas.errors import ToolDefinitionError
from tests.conftest import shop_environment
from toolservers import (
    TRANSPORTS,
    Connected,
    TransportName,
    build_tool_server,
    connect_tool_server,
    http_client,
    http_tool_server,
    save_environment,
    stdio_tool_server,
)

pytestmark = pytest.mark.anyio

INJECTION = "x'); DROP TABLE customers;--"


class Recorder:
    """An ``on_event`` callback that keeps what it is given."""

    def __init__(self) -> None:
        self.events: list[ToolEvent] = []

    async def __call__(self, event: ToolEvent) -> None:
        self.events.append(event)

    def results(self) -> list[ToolResult]:
        return [e for e in self.events if isinstance(e, ToolResult)]


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> TransportName:
    name: TransportName = request.param
    return name


@asynccontextmanager
async def served(
    transport: TransportName, environment: Environment | None = None, *, dialogue_id: str = "d-1"
) -> AsyncIterator[tuple[Connected, Recorder]]:
    recorder = Recorder()
    async with connect_tool_server(
        environment or shop_environment(), transport=transport, on_event=recorder, dialogue_id=dialogue_id
    ) as conn:
        yield conn, recorder


def text_of(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


# --- listing, reading, writing ---------------------------------------------------------


async def test_list_tools(transport: TransportName) -> None:
    env = shop_environment()
    async with served(transport) as (conn, _):
        listed = {t.name: t for t in (await conn.client.list_tools()).tools}
    assert list(listed) == [t.name for t in env.tools]
    for spec in env.tools:
        tool = listed[spec.name]
        assert tool.description == spec.description
        assert tool.input_schema == spec.input_schema
        assert tool.output_schema == spec.output_schema
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is (spec.effect is Effect.READ)


async def test_read(transport: TransportName) -> None:
    async with served(transport) as (conn, _):
        result = await conn.client.call_tool("get_customer", {"customer_id": 1})
        rows = await conn.client.call_tool("search_customers", {"tier": "basic"})
    assert not result.is_error
    expected = {"customer_id": 1, "name": "Ada Lovelace", "email": "ada@example.com", "tier": "gold"}
    assert result.structured_content == expected
    assert json.loads(text_of(result)) == expected
    assert json.loads(text_of(rows))["rows"] == [
        {"customer_id": 2, "name": "Alan Turing", "email": "alan@example.com", "tier": "basic"}
    ]


async def test_write_is_visible_to_later_reads(transport: TransportName) -> None:
    async with served(transport) as (conn, _):
        created = await conn.client.call_tool(
            "create_customer", {"name": "Grace Hopper", "email": "grace@example.com", "tier": "gold"}
        )
        assert not created.is_error
        assert created.structured_content is not None
        new_id = created.structured_content["customer_id"]
        got = await conn.client.call_tool("get_customer", {"customer_id": new_id})
        found = await conn.client.call_tool("search_customers", {"name": "Hopper"})
        # The live view of the database sees the committed write on every transport.
        live = conn.database.query("SELECT name FROM customers WHERE customer_id = :id", {"id": new_id})
        updated = await conn.client.call_tool("update_order_status", {"order_id": 10, "status": "shipped"})
        status = (await conn.finish()).query("SELECT status FROM orders WHERE order_id = 10")
    assert got.structured_content == created.structured_content
    assert [r["name"] for r in json.loads(text_of(found))["rows"]] == ["Grace Hopper"]
    assert live == [("Grace Hopper",)]
    assert not updated.is_error
    assert status == [("shipped",)]


async def test_write_is_invisible_to_another_server(transport: TransportName) -> None:
    env = shop_environment()
    async with served(transport, env) as (first, _), served(transport, env) as (second, _):
        created = await first.client.call_tool(
            "create_customer", {"name": "Grace Hopper", "email": "grace@example.com", "tier": "gold"}
        )
        assert created.structured_content is not None
        new_id = created.structured_content["customer_id"]
        elsewhere = await second.client.call_tool("get_customer", {"customer_id": new_id})
        here = await first.client.call_tool("get_customer", {"customer_id": new_id})
        second_db = (await second.finish()).snapshot()
    assert elsewhere.is_error
    assert "not_found" in text_of(elsewhere)
    assert not here.is_error
    assert len(second_db["customers"]) == 2
    async with served(transport, env) as (later, _):
        assert (await later.client.call_tool("get_customer", {"customer_id": new_id})).is_error


# --- bad input ---------------------------------------------------------------------------

INVALID_CALLS: list[tuple[str, dict[str, Any], str]] = [
    ("get_customer", {}, "customer_id"),  # missing required
    ("get_customer", {"customer_id": "abc"}, "customer_id"),  # wrong type
    ("get_customer", {"customer_id": 1.5}, "customer_id"),  # wrong type (not an integer)
    ("get_customer", {"customer_id": 1, "extra": True}, "extra"),  # unknown field
    ("create_customer", {"name": "A", "email": "a@x", "tier": "platinum"}, "tier"),  # out of enum
    ("create_customer", {"name": "A", "email": "a@x"}, "tier"),  # missing required (write)
    ("update_order_status", {"order_id": 10, "status": "lost"}, "status"),  # out of enum (write)
    ("search_customers", {"limit": 0}, "limit"),  # below minimum
]


async def test_invalid_arguments_name_the_field_and_change_nothing(transport: TransportName) -> None:
    async with served(transport) as (conn, recorder):
        before = conn.database.snapshot()
        results = [await conn.client.call_tool(tool, args) for tool, args, _ in INVALID_CALLS]
        after = (await conn.finish()).snapshot()
    assert after == before
    for (tool, _, field), result in zip(INVALID_CALLS, results, strict=True):
        assert result.is_error, tool
        assert result.structured_content is None
        assert field in text_of(result), (tool, text_of(result))
    assert [r.error_code for r in recorder.results()] == ["invalid_arguments"] * len(INVALID_CALLS)


async def test_unknown_tool_is_a_protocol_error_not_a_tool_call(transport: TransportName) -> None:
    protocol_errors: list[ErrorEvent] = []

    async def on_protocol_error(event: ErrorEvent) -> None:
        protocol_errors.append(event)

    recorder = Recorder()
    async with connect_tool_server(
        shop_environment(),
        transport=transport,
        on_event=recorder,
        dialogue_id="d-1",
        on_protocol_error=on_protocol_error,
    ) as conn:
        with pytest.raises(MCPError) as caught:
            await conn.client.call_tool("drop_everything", {})
        still_fine = await conn.client.call_tool("get_customer", {"customer_id": 1})
        await conn.finish()
    assert caught.value.code == types.INVALID_PARAMS
    assert "drop_everything" in caught.value.message
    assert not still_fine.is_error
    # Only the real call is a tool call; the unknown one is a protocol-level event.
    assert [(type(e), e.tool) for e in recorder.events] == [(ToolCall, "get_customer"), (ToolResult, "get_customer")]
    assert [(e.where, e.error_type, e.dialogue_id) for e in protocol_errors] == [("tools/call", "unknown_tool", "d-1")]


async def test_sql_injection_is_stored_and_matched_literally(transport: TransportName) -> None:
    async with served(transport) as (conn, _):
        created = await conn.client.call_tool(
            "create_customer", {"name": INJECTION, "email": "evil@example.com", "tier": "basic"}
        )
        found = await conn.client.call_tool("search_customers", {"name": INJECTION})
        tautology = await conn.client.call_tool("search_customers", {"name": "' OR '1'='1"})
        final = (await conn.finish()).snapshot()
    assert not created.is_error
    assert [r["name"] for r in json.loads(text_of(found))["rows"]] == [INJECTION]
    assert json.loads(text_of(tautology))["rows"] == []
    assert {"customers", "orders"} <= set(final)
    assert INJECTION in {row[1] for row in final["customers"]}


async def test_constraint_violation_is_an_error_and_rolls_back(transport: TransportName) -> None:
    async with served(transport) as (conn, recorder):
        before = conn.database.snapshot()
        duplicate = await conn.client.call_tool(
            "create_customer", {"name": "Ada Again", "email": "ada@example.com", "tier": "gold"}
        )
        missing = await conn.client.call_tool("update_order_status", {"order_id": 999, "status": "shipped"})
        after = (await conn.finish()).snapshot()
    assert duplicate.is_error and missing.is_error
    assert "email" in text_of(duplicate)
    assert [r.error_code for r in recorder.results()] == ["execution_failed", "not_found"]
    assert after == before


# --- tool definitions the authorizer refuses ------------------------------------------

REFUSED_SQL = [
    pytest.param(Effect.READ, "INSERT INTO customers (name, email, tier) VALUES ('a', 'b', 'basic')", id="insert"),
    pytest.param(Effect.READ, "DELETE FROM orders", id="delete"),
    pytest.param(Effect.WRITE, "ATTACH DATABASE ':memory:' AS other", id="attach"),
    pytest.param(Effect.WRITE, "PRAGMA foreign_keys = OFF", id="pragma-write"),
    pytest.param(Effect.WRITE, "PRAGMA user_version = 7", id="pragma-user-version"),
    pytest.param(Effect.READ, "SELECT load_extension('/tmp/evil.so')", id="load-extension"),
    pytest.param(Effect.WRITE, "DROP TABLE orders", id="ddl"),
]


def with_tool(effect: Effect, sql: str) -> Environment:
    env = shop_environment()
    env.tools.append(
        ToolSpec(
            name="evil",
            description="Tries something it may not.",
            effect=effect,
            input_schema={"type": "object", "properties": {}},
            implementation=SqlImplementation(statements=[sql]),
        )
    )
    return env


@pytest.mark.parametrize(("effect", "sql"), REFUSED_SQL)
def test_authorizer_refuses_tool_at_load_time(effect: Effect, sql: str) -> None:
    with pytest.raises(ToolDefinitionError) as info:
        build_tool_server(with_tool(effect, sql), source="shop.json")
    assert info.value.tool == "evil"
    assert info.value.source == "shop.json"


async def test_refused_tool_fails_before_connecting(transport: TransportName) -> None:
    recorder = Recorder()
    with pytest.raises(ToolDefinitionError) as info:
        async with connect_tool_server(
            with_tool(Effect.READ, "DELETE FROM orders"), transport=transport, on_event=recorder
        ):
            pytest.fail("connected to a server with a refused tool")
    assert info.value.tool == "evil"


# --- events ----------------------------------------------------------------------------


async def test_every_call_reports_a_call_and_a_result(transport: TransportName) -> None:
    calls: list[tuple[str, dict[str, Any]]] = [
        ("get_customer", {"customer_id": 2}),
        ("get_customer", {"customer_id": 404}),
        ("create_customer", {"name": "Grace", "email": "grace@example.com", "tier": "gold"}),
        ("search_customers", {"tier": "nope"}),
        ("update_order_status", {"order_id": 11, "status": "cancelled"}),
    ]
    async with served(transport, dialogue_id="dlg-7") as (conn, recorder):
        results = []
        for i, (name, args) in enumerate(calls):
            results.append(await conn.client.call_tool(name, args))
            # A call's events have been handled by the time its result is returned.
            assert len(recorder.events) == 2 * (i + 1)
        await conn.finish()
    events = recorder.events
    assert len(events) == 2 * len(calls)
    assert all(e.dialogue_id == "dlg-7" for e in events)
    tool_calls = [e for e in events if isinstance(e, ToolCall)]
    tool_results = recorder.results()
    assert [(c.tool, c.arguments) for c in tool_calls] == calls
    assert [r.call_id for r in tool_results] == [c.call_id for c in tool_calls]
    assert len({c.call_id for c in tool_calls}) == len(calls)
    for call in tool_calls:  # each call is reported before its result
        result_at = next(i for i, e in enumerate(events) if isinstance(e, ToolResult) and e.call_id == call.call_id)
        assert events.index(call) < result_at
    assert (
        [r.is_error for r in tool_results]
        == [r.is_error for r in results]
        == [
            False,
            True,
            False,
            True,
            False,
        ]
    )
    assert tool_results[2].affected == 1
    assert tool_results[2].structured == results[2].structured_content


# --- the lower-level helpers -----------------------------------------------------------


async def test_stdio_helper_serves_an_environment_file(tmp_path: Path) -> None:
    env_file = tmp_path / "shop.json"
    save_environment(shop_environment(), env_file)
    recorder = Recorder()
    async with stdio_tool_server(env_file, on_event=recorder, dialogue_id="s-1") as client:
        tools = await client.list_tools()
        result = await client.call_tool("get_customer", {"customer_id": 2})
    assert len(tools.tools) == 4
    assert result.structured_content is not None and result.structured_content["name"] == "Alan Turing"
    assert [type(e) for e in recorder.events] == [ToolCall, ToolResult]
    assert {e.dialogue_id for e in recorder.events} == {"s-1"}
    async with stdio_tool_server(env_file) as client:  # without an events socket
        assert not (await client.call_tool("get_customer", {"customer_id": 1})).is_error


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
ACCEPT = "application/json, text/event-stream"


async def test_http_requires_the_token_and_a_loopback_host() -> None:
    tool_server = build_tool_server(shop_environment())
    try:
        async with http_tool_server(tool_server, token="s3cret-token") as endpoint, httpx2.AsyncClient() as http:
            assert endpoint.token == "s3cret-token"
            assert endpoint.url.startswith("http://127.0.0.1:") and endpoint.url.endswith("/mcp")

            async def post(headers: dict[str, str]) -> httpx2.Response:
                return await http.post(endpoint.url, json=INITIALIZE, headers={"Accept": ACCEPT, **headers})

            missing = await post({})
            wrong = await post({"Authorization": "Bearer not-the-token"})
            basic = await post({"Authorization": "Basic s3cret-token"})
            bad_host = await post({"Authorization": "Bearer s3cret-token", "Host": "evil.example:8080"})
            good = await post({"Authorization": "Bearer s3cret-token"})
            for response in (missing, wrong, basic):
                assert response.status_code == 401
                assert response.json()["error"] == "unauthorized"
                assert "s3cret-token" not in response.text
            assert 400 <= bad_host.status_code < 500
            assert good.status_code == 200

            async with http_client(endpoint.url, "s3cret-token") as client:
                assert not (await client.call_tool("get_customer", {"customer_id": 1})).is_error
            with pytest.RaisesGroup(MCPError, flatten_subgroups=True):
                async with http_client(endpoint.url, "wrong") as client:
                    await client.list_tools()
    finally:
        tool_server.close()


async def _read_until(stream: TextReceiveStream, seen: list[str], *needles: str) -> None:
    while not all(any(n in line for line in seen) for n in needles):
        seen.extend((await stream.receive()).splitlines())


@pytest.mark.parametrize("given_token", [False, True], ids=["random-token", "given-token"])
async def test_cli_serves_http_on_a_free_port(tmp_path: Path, given_token: bool) -> None:
    env_file = tmp_path / "shop.json"
    save_environment(shop_environment(), env_file)
    command = [sys.executable, "-m", "simulator", "tools", "serve", "--environment", str(env_file)]
    command += ["--transport", "http", "--port", "0"]
    if given_token:
        command += ["--token", "given-token-123"]
    process: Process = await anyio.open_process(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    async with process:
        assert process.stderr is not None and process.stdout is not None
        stderr = TextReceiveStream(process.stderr)
        lines: list[str] = []
        with anyio.fail_after(60):
            await _read_until(
                stderr, lines, "serving MCP tools at http://127.0.0.1:", *([] if given_token else ["token: "])
            )
        url = next(line for line in lines if "serving MCP tools at" in line).rsplit(" ", 1)[1]
        token = (
            "given-token-123" if given_token else next(line for line in lines if "token: " in line).rsplit(" ", 1)[1]
        )
        async with http_client(url, token) as client:
            result = await client.call_tool("get_customer", {"customer_id": 1})
        assert not result.is_error
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(30):
            rest = [chunk async for chunk in stderr]
            code = await process.wait()
            stdout = [chunk async for chunk in process.stdout]
    assert code == 0
    assert stdout == []
    all_stderr = "\n".join(lines) + "".join(rest)
    assert all_stderr.count(token) == (0 if given_token else 1)


async def test_the_handler_answers_with_exactly_the_dump_of_its_result() -> None:
    # The MCP handler sends its result in wire form; it must be what the SDK would have
    # dumped the same CallToolResult to: nothing missing, nothing extra, for both outcomes.
    server = build_tool_server(shop_environment())
    try:
        params = types.CallToolRequestParams(name="get_customer", arguments={"customer_id": 1})
        ok = await server._call_tool(None, params)
        bad = await server._call_tool(None, types.CallToolRequestParams(name="get_customer", arguments={}))
        for wire in (ok, bad):
            model = types.CallToolResult.model_validate(wire)
            assert model.model_dump(by_alias=True, mode="json", exclude_none=True) == wire
        assert ok["structuredContent"]["name"] == "Ada Lovelace" and not ok["isError"]
        assert bad["isError"] and bad["_meta"]["dialogsim/error_code"] == "invalid_arguments"
        direct = await server.call("call_x", "get_customer", {"customer_id": 1})
        assert direct.structured_content == ok["structuredContent"]
    finally:
        server.close()
