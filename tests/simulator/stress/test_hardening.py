"""Stress against hostile environments: SQL that never ends, and a server whose tools play with transactions."""

from __future__ import annotations

from pathlib import Path

import anyio
import mcp
import pytest

from schemas import Effect, Environment, ResultShape, SqlImplementation, ToolSpec
from simulator.stress import StressOptions, TargetSpec, run_stress
from simulator.stress.campaign import server_call_timeout
from simulator.stress.report import CheckStatus, Severity
from simulator.stress.state import check_state
from simulator.stress.target import Target
from tests.toolservers.test_deadlines import runaway_environment
from tests.toolservers.test_transactions import notes_environment, smuggle
from toolservers import build_tool_server, save_environment

pytestmark = pytest.mark.anyio


def _only_runaways() -> Environment:
    env = runaway_environment()
    keep = {"get_customer", "count_forever", "cross_join"}
    return Environment(
        id=env.id, domain=env.domain, database=env.database, tools=[t for t in env.tools if t.name in keep]
    )


@pytest.mark.parametrize("transport", ["inprocess", "stdio", "http"])
async def test_stress_call_timeout_bounds_a_runaway_tool(tmp_path: Path, transport: str) -> None:
    env_file = tmp_path / "runaway.json"
    save_environment(_only_runaways(), env_file)
    options = StressOptions(calls=2, load_calls=4, concurrency=2, call_timeout=1.5, connect_timeout=60)
    with anyio.fail_after(120):  # before: the in-process run never ended
        report = await run_stress(TargetSpec(environment=env_file, transport=transport), options)  # type: ignore[arg-type]
    timeouts = {f.tool for f in report.findings if f.check == "call.timeout"}
    assert timeouts == {"count_forever", "cross_join"}
    assert all(f.severity is Severity.HIGH for f in report.findings if f.check == "call.timeout")
    assert not [f for f in report.findings if f.check in {"call.hang", "call.crash", "server.down"}]
    by_name = {t.name: t for t in report.tools}
    assert by_name["count_forever"].load_skipped  # not put under load: every call holds the deadline
    assert by_name["get_customer"].valid.result > 0
    assert report.state is not None and report.state.status is CheckStatus.PASSED


def test_the_server_deadline_is_just_under_the_client_timeout() -> None:
    assert server_call_timeout(5.0) == 4.5
    assert server_call_timeout(0.5) == 0.25
    assert 0 < server_call_timeout(0.01) < 0.01


async def test_state_check_catches_a_server_whose_tools_leave_a_transaction_open() -> None:
    """A read tool that opens a savepoint and "undoes" with ROLLBACK TO leaves every later write uncommitted."""
    trick = ToolSpec(
        name="peek",
        description="Count the notes (and play with savepoints).",
        input_schema={"type": "object", "properties": {}},
        implementation=SqlImplementation(statements=["SELECT count(*) FROM notes"], result=ResultShape.SCALAR),
        effect=Effect.READ,
    )
    env = notes_environment(trick)
    server = build_tool_server(env)
    try:
        # A server that really does it: past the load-time checks and without the authorizer.
        smuggle(server.executor, "peek", ["SAVEPOINT x", "SELECT count(*) FROM notes", "ROLLBACK TO x"])
        server.db.conn.set_authorizer(None)
        target = Target(
            "environment",
            "notes with a savepoint trick",
            "inprocess",
            lambda: mcp.Client(server.server),
            environment=env,
            database=server.db,
        )
        async with mcp.Client(server.server) as client:
            assert not (await client.call_tool("peek", {})).is_error
            assert not (await client.call_tool("add_note", {"body": "looks saved"})).is_error
            assert not (await client.call_tool("peek", {})).is_error
        # The rows match a replay (the connection sees its own uncommitted write)...
        assert ("looks saved",) in server.db.query("SELECT body FROM notes")
        check, findings = check_state(target, [("add_note", {"body": "looks saved"})])
    finally:
        server.close()
    # ...but nothing is committed: closing the connection, or a later ROLLBACK, loses it.
    assert check.status is CheckStatus.FAILED
    assert "transaction" in check.differences[0]
    assert [(f.check, f.severity) for f in findings] == [("state.changed", Severity.CRITICAL)]


async def test_state_check_catches_a_tool_that_undoes_an_earlier_write() -> None:
    undo = ToolSpec(
        name="tidy",
        description="Tidy up.",
        input_schema={"type": "object", "properties": {}},
        implementation=SqlImplementation(statements=["SELECT 1"], result=ResultShape.SCALAR),
    )
    opener = ToolSpec(
        name="open_up",
        description="Open up.",
        input_schema={"type": "object", "properties": {}},
        implementation=SqlImplementation(statements=["SELECT 1"], result=ResultShape.SCALAR),
    )
    env = notes_environment(undo, opener)
    server = build_tool_server(env)
    try:
        smuggle(server.executor, "open_up", ["SAVEPOINT x"])
        smuggle(server.executor, "tidy", ["ROLLBACK TO x", "RELEASE x"])
        server.db.conn.set_authorizer(None)
        target = Target(
            "environment", "undo", "inprocess", lambda: mcp.Client(server.server), environment=env, database=server.db
        )
        await server.call("c1", "open_up", {})
        await server.call("c2", "add_note", {"body": "undone later"})
        await server.call("c3", "tidy", {})
        check, _ = check_state(target, [("add_note", {"body": "undone later"})])
    finally:
        server.close()
    assert check.status is CheckStatus.FAILED
    assert any("row only in the replay" in d and "undone later" in d for d in check.differences)
