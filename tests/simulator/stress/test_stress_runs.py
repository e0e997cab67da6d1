"""Whole runs: our own environments over every transport, and the deliberately broken server.

The broken server (``broken_server.py``) runs as a real subprocess, over stdio through
``--server`` and over streamable HTTP through ``--url``; every defect it has must be found
and attributed to its tool, and the command must exit with the right code.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from simulator.cli import main
from simulator.domains import load_domain
from simulator.stress import Outcome, Severity, StressOptions, StressReport, TargetSpec, run_stress
from simulator.stress.report import CheckStatus
from tests.conftest import shop_environment
from toolservers import TRANSPORTS, TransportName, save_environment

BROKEN = Path(__file__).with_name("broken_server.py")
FAST = ["--calls", "3", "--load-calls", "12", "--concurrency", "4", "--call-timeout", "0.5"]


def findings_of(report: dict[str, Any]) -> set[tuple[str | None, str, str]]:
    return {(f["tool"], f["check"], f["severity"]) for f in report["findings"]}


def assert_no_failures(report: StressReport) -> None:
    for tool in report.tools:
        for counts in (tool.valid, tool.invalid):
            assert counts.crash == counts.hang == 0, tool.name
        assert tool.invalid.result == 0, f"{tool.name} accepted invalid arguments"
    assert not [f for f in report.findings if f.check in {"call.crash", "call.hang", "input.accepted_invalid"}]


# -- our own environments ---------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_our_environment_over_every_transport(transport: TransportName, tmp_path: Path) -> None:
    env_file = tmp_path / "shop.json"
    save_environment(shop_environment(), env_file)
    spec = TargetSpec(environment=env_file, transport=transport)
    report = await run_stress(spec, StressOptions(calls=3, load_calls=24, concurrency=4, call_timeout=5))
    assert report.target.transport == transport
    assert [t.name for t in report.tools] == [t.name for t in shop_environment().tools]
    assert all(t.valid.total >= 1 and t.invalid.total >= 1 for t in report.tools)
    assert_no_failures(report)
    assert all(t.invalid.tool_error == t.invalid.total for t in report.tools)
    assert report.state.status is CheckStatus.PASSED
    assert report.state.replayed_writes >= 1
    assert report.load.server_up and report.load.calls == 24 and report.load.outcomes.failures == 0
    assert report.reconnects == 0
    assert report.passed, [f for f in report.failing()]


@pytest.mark.anyio
async def test_a_fresh_run_against_a_derived_environment_is_clean() -> None:
    """A built-in domain (derived tools plus composites): no crash, no accepted invalid input, no state change."""
    spec = TargetSpec(environment_object=load_domain("retail"))
    report = await run_stress(spec, StressOptions(calls=8, load_calls=40, call_timeout=5, seed=11))
    assert_no_failures(report)
    assert sum(t.invalid.total for t in report.tools) >= 5 * len(report.tools)
    assert report.state.status is CheckStatus.PASSED
    assert report.state.replayed_writes >= 5
    assert report.load.server_up
    assert not [f for f in report.findings if f.severity is Severity.CRITICAL]


@pytest.mark.anyio
async def test_huge_integers_are_refused_cleanly_over_stdio(tmp_path: Path) -> None:
    env_file = tmp_path / "shop.json"
    save_environment(shop_environment(), env_file)
    spec = TargetSpec(environment=env_file, transport="stdio")
    report = await run_stress(spec, StressOptions(calls=6, load_calls=0, call_timeout=5))
    assert not [f for f in report.findings if f.check == "call.protocol_error"]
    assert report.state.status is CheckStatus.PASSED


def test_cli_exit_codes_on_our_environment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env_file = tmp_path / "shop.json"
    save_environment(shop_environment(), env_file)
    out = tmp_path / "out"
    assert main(["stress", "--environment", str(env_file), *FAST, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "PASS" in text and "state safety: passed" in text
    report = json.loads((out / "report.json").read_text())
    assert report["kind"] == "stress_report" and report["state"]["status"] == "passed"
    # Every tool has a low finding or none; failing on low turns the same run into exit code 1.
    assert main(["stress", "--environment", str(env_file), *FAST, "--fail-on", "low"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_no_writes_skips_the_write_tools(tmp_path: Path) -> None:
    env_file = tmp_path / "shop.json"
    save_environment(shop_environment(), env_file)
    out = tmp_path / "out"
    assert main(["stress", "--environment", str(env_file), *FAST, "--no-writes", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    skipped = {t["name"]: t["skipped"] for t in report["tools"] if t["skipped"]}
    assert set(skipped) == {"create_customer", "update_order_status"}
    assert all("declares effect 'write'" in why for why in skipped.values())
    assert report["state"]["status"] == "passed" and report["state"]["replayed_writes"] == 0


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        ([], "exactly one target"),
        (["--environment", "a.json", "--url", "http://127.0.0.1:9/mcp"], "exactly one target"),
        (["--environment", "missing.json"], "no such file"),
        (["--url", "ftp://x"], "--url"),
        (["--url", "http://127.0.0.1:9/mcp", "--header", "no colon"], "--header"),
        (["--server", "x", "--header", "A: b"], "--header goes with --url"),
        (["--server", "definitely-not-a-command-xyz"], "not found"),
        (["--domain", "retail", "--fail-on", "severe"], "--fail-on"),
        (["--domain", "retail", "--calls", "0"], "--calls"),
        (["--domain", "nowhere"], "unknown domain"),
        (["--url", "http://127.0.0.1:9/mcp", "--connect-timeout", "5"], "cannot use"),
    ],
)
def test_bad_input_exits_2(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stress", *argv]) == 2
    assert needle in capsys.readouterr().err


# -- the deliberately broken server ------------------------------------------------------------


EXPECTED_DEFECTS = {
    ("lookup_user", "input.accepted_invalid", "high"),
    ("slow_search", "call.hang", "high"),
    ("get_weather", "output.schema_violation", "high"),
    ("bad_schema", "schema.invalid", "high"),
    ("bad_schema", "schema.required_unknown", "high"),
    ("rate_item", "input.unhandled_error", "medium"),
    ("export_report", "call.crash", "critical"),
}


def assert_defects_attributed(report: dict[str, Any]) -> None:
    found = findings_of(report)
    assert found >= EXPECTED_DEFECTS
    # The correct tool is blamed for nothing above low.
    assert not [f for f in found if f[0] == "get_item" and Severity(f[2]).rank > Severity.LOW.rank]
    # Each defect is blamed on its own tool only.
    for tool, check, _ in EXPECTED_DEFECTS:
        assert {t for t, c, _ in found if c == check} == {tool}, check
    tools = {t["name"]: t for t in report["tools"]}
    assert tools["slow_search"]["valid"]["hang"] >= 1
    assert tools["export_report"]["valid"]["crash"] + tools["export_report"]["invalid"]["crash"] == 1
    assert tools["lookup_user"]["invalid"][Outcome.RESULT.value] >= 1
    assert tools["get_item"]["invalid"]["tool_error"] >= 1 and tools["get_item"]["invalid"]["result"] == 0
    assert report["state"]["status"] == "skipped"  # no database to look at


def started_servers(log: Path) -> list[tuple[int, set[str]]]:
    out = []
    for line in log.read_text().splitlines():
        if line.startswith("broken_server pid="):
            pid_part, env_part = line.split()[1:3]
            out.append((int(pid_part.split("=")[1]), set(env_part.split("=", 1)[1].split(","))))
    return out


def test_broken_server_over_stdio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIALOGSIM_TEST_SECRET", "must-not-leak")
    out = tmp_path / "out"
    argv = ["stress", "--server", f"{sys.executable} {BROKEN}", "--env", "EXTRA_SETTING=1", *FAST, "--out", str(out)]
    assert main(argv) == 1
    report = json.loads((out / "report.json").read_text())
    assert_defects_attributed(report)
    assert report["reconnects"] == 1  # restarted once, after the crash
    assert report["load"]["server_up"] is True
    tools = {t["name"]: t for t in report["tools"]}
    assert tools["export_report"]["load"] is None and tools["export_report"]["load_skipped"]
    assert tools["slow_search"]["load"] is None and tools["slow_search"]["load_skipped"]
    assert sum(tools["get_item"]["load"].values()) >= 1
    # Started with a minimal environment, and every process started is gone.
    servers = started_servers(out / "server-stderr.log")
    assert len(servers) == 2
    for pid, env in servers:
        assert env <= {"PATH", "HOME", "LANG", "LC_CTYPE", "EXTRA_SETTING"}
        assert "EXTRA_SETTING" in env and "DIALOGSIM_TEST_SECRET" not in env
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


@pytest.fixture
def broken_http_server() -> Iterator[str]:
    command = [sys.executable, str(BROKEN), "--http"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()  # the server prints its URL once it listens
            assert line.startswith("URL "), line
            yield line.split()[1]
        finally:
            process.kill()


def test_broken_server_over_http(broken_http_server: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = ["stress", "--url", broken_http_server, "--header", "X-Probe: 1", *FAST, "--out", str(out)]
    assert main(argv) == 1
    report = json.loads((out / "report.json").read_text())
    assert_defects_attributed(report)
    # A server behind a URL cannot be restarted: after the crash it is down, and says so.
    assert ("None", "server.down", "critical") in {(str(t), c, s) for t, c, s in findings_of(report)}
    assert report["load"]["status"] == "skipped"
    assert report["target"]["kind"] == "url"
