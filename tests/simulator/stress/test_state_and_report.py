"""The state check against a replay, the load phase's concurrency bound, and the report's pieces."""

from __future__ import annotations

from typing import Any

import anyio
import mcp
import mcp_types as types
import msgspec
import pytest
from mcp.server import Server

from schemas import Effect
from schemas.errors import ConfigError
from simulator.stress._link import Link
from simulator.stress._tool import ToolInfo
from simulator.stress.generate import Case
from simulator.stress.load import run_load
from simulator.stress.report import (
    CheckStatus,
    Finding,
    Latency,
    LoadSummary,
    Severity,
    StateCheck,
    StressOptionsRecord,
    StressReport,
    TargetInfo,
    ToolReport,
    write_report,
)
from simulator.stress.state import check_state
from simulator.stress.target import Target, TargetSpec, open_target
from tests.conftest import shop_environment

pytestmark = pytest.mark.anyio


async def test_state_check_passes_for_replayed_writes_and_fails_for_anything_else() -> None:
    env = shop_environment()
    async with open_target(TargetSpec(environment_object=env)) as target:
        assert target.database is not None
        args = {"name": "Grace Hopper", "email": "grace@example.com", "tier": "gold"}
        # What a successful write call does on the server's own database...
        live_executor_db = target.database
        from toolservers import ToolExecutor

        ToolExecutor(env, live_executor_db).call("create_customer", args)
        check, findings = check_state(target, [("create_customer", args)])
        assert check.status is CheckStatus.PASSED and check.replayed_writes == 1 and findings == []
        # ... and a change no successful write explains.
        with live_executor_db.allowing(Effect.WRITE):
            live_executor_db.conn.execute("UPDATE orders SET status = 'lost' WHERE order_id = 10")
        check, findings = check_state(target, [("create_customer", args)])
    assert check.status is CheckStatus.FAILED
    assert any(d.startswith("orders: row only in the server's database") and "lost" in d for d in check.differences)
    assert [(f.check, f.severity, f.tool) for f in findings] == [("state.changed", Severity.CRITICAL, None)]


async def test_state_check_is_skipped_or_inconclusive_when_it_cannot_judge() -> None:
    async with open_target(TargetSpec(environment_object=shop_environment())) as target:
        check, _ = check_state(target, [], uncertain="a write hung")
        assert check.status is CheckStatus.INCONCLUSIVE
    server_only = Target("server", "x", "stdio", lambda: mcp.Client("http://127.0.0.1:9/mcp"))
    check, findings = check_state(server_only, [])
    assert check.status is CheckStatus.SKIPPED and findings == []


async def test_the_load_phase_never_exceeds_its_concurrency() -> None:
    in_flight = 0
    peak = 0

    async def call_tool(_ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        for _ in range(20):  # let the other calls in flight run
            await anyio.lowlevel.checkpoint()
        in_flight -= 1
        return types.CallToolResult(content=[types.TextContent(type="text", text="ok")])

    async def list_tools(_ctx: Any, _params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[])

    server: Server[Any] = Server("counting", on_call_tool=call_tool, on_list_tools=list_tools)
    tools = [ToolInfo(f"t{i}", "a tool", {"type": "object"}, None) for i in range(3)]
    cases = {t.name: [Case("typical", {}, True)] for t in tools}
    reports = {t.name: ToolReport(name=t.name, writes=False) for t in tools}
    async with anyio.create_task_group() as tg:
        link = Link(lambda: mcp.Client(server), tg, connect_timeout=10)
        await link.connect()
        summary, findings = await run_load(link, tools, cases, reports, calls=40, concurrency=3, call_timeout=5)
        await link.aclose()
    assert 2 <= peak <= 3
    assert summary.calls == 40 and summary.outcomes.result == 40 and summary.server_up
    assert findings == []
    assert [r.load.total if r.load else 0 for r in reports.values()] == [14, 13, 13]


def test_latency_percentiles_are_nearest_rank() -> None:
    lat = Latency.of(float(i) for i in range(1, 101))
    assert lat is not None
    assert (lat.p50_ms, lat.p90_ms, lat.p99_ms, lat.max_ms) == (50.0, 90.0, 99.0, 100.0)
    assert Latency.of([]) is None


def test_severity_parsing_and_report_round_trip(tmp_path: Any) -> None:
    assert Severity.parse(" HIGH ") is Severity.HIGH
    with pytest.raises(ConfigError):
        Severity.parse("severe")
    report = StressReport(
        target=TargetInfo(kind="url", description="http://x/mcp", transport="http"),
        options=StressOptionsRecord(
            calls=1, load_calls=0, concurrency=1, call_timeout_s=1.0, seed=0, no_writes=False, fail_on=Severity.MEDIUM
        ),
        started_at="2026-01-01T00:00:00+00:00",
        duration_s=1.0,
        tools=[ToolReport(name="t", writes=False)],
        findings=[Finding(check="description.vague", severity=Severity.LOW, tool="t", message="m", fix="f")],
        state=StateCheck(status=CheckStatus.SKIPPED, detail="-"),
        load=LoadSummary(status=CheckStatus.SKIPPED),
    )
    assert report.passed  # low is below medium
    assert report.failing(Severity.LOW) == report.findings
    path = write_report(report, tmp_path / "out")
    decoded = msgspec.json.decode(path.read_bytes(), type=StressReport)
    assert decoded == report
    assert msgspec.json.decode(path.read_bytes())["kind"] == "stress_report"
