"""What stress writes: no ``--env`` value anywhere, honest counts when nothing succeeded, and ``run.log``.

``env_echo_server.py`` runs as a real subprocess: it prints its environment to stderr
and answers every call with it, so whatever stress copies from the server (evidence,
its stderr, the error when it dies) would carry the value.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from rich.console import Console

from simulator.cli import main
from simulator.stress import print_summary
from simulator.stress._redact import Redactor
from simulator.stress.generate import CaseGenerator
from simulator.stress.report import (
    CheckStatus,
    LoadSummary,
    OutcomeCounts,
    Severity,
    StateCheck,
    StressOptionsRecord,
    StressReport,
    TargetInfo,
    ToolReport,
)

ECHO = Path(__file__).with_name("env_echo_server.py")
SECRET = "sk-passed-777"
FAST = ["--calls", "4", "--load-calls", "30", "--concurrency", "4", "--call-timeout", "5"]


def everything_written(out: Path, capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    files = "".join(p.read_text(encoding="utf-8") for p in sorted(out.iterdir()) if p.is_file())
    return captured.out + captured.err + files


# -- 1. --env values ---------------------------------------------------------------------------


def test_env_values_reach_nothing_stress_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    argv = ["stress", "--server", f"{sys.executable} {ECHO}", "--env", f"MY_API_KEY={SECRET}"]
    # Any --env value, not only one whose name looks secret; a value with a quote shows up escaped in JSON.
    argv += ["--env", 'REGION=eu-"west"-9', *FAST, "--no-writes", "--out", str(out)]
    assert main(argv) == 1  # the tool accepts invalid arguments: a high finding
    written = everything_written(out, capsys)
    assert {p.name for p in out.iterdir()} == {"report.json", "run.log", "server-stderr.log"}
    assert SECRET not in written and 'eu-"west"-9' not in written and 'eu-\\"west\\"-9' not in written
    report = json.loads((out / "report.json").read_text())
    evidence = " ".join(f["evidence"] or "" for f in report["findings"])
    assert "[--env MY_API_KEY]" in evidence and "[--env REGION]" in evidence  # redacted, not dropped
    assert "[--env MY_API_KEY]" in (out / "server-stderr.log").read_text()


def test_env_values_stay_out_of_the_error_when_the_server_dies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["stress", "--server", f"{sys.executable} {ECHO} --die", "--env", f"MY_API_KEY={SECRET}"]
    assert main([*argv, "--connect-timeout", "10", "--out", str(out)]) == 2
    written = everything_written(out, capsys)
    assert "cannot use" in written and "[--env MY_API_KEY]" in written
    assert SECRET not in written


def test_redactor_labels_values_longest_first_and_leaves_short_ones() -> None:
    redactor = Redactor.of({"A": "abcd", "LONG": "abcdefgh", "DEBUG": "1"}, {"Authorization": "Bearer tok-123"})
    assert redactor.text("abcdefgh abcd 1") == "[--env LONG] [--env A] 1"
    assert redactor.text("token tok-123") == "token [--header Authorization]"


# -- 2. tools never exercised ----------------------------------------------------------------------


def _report(tools: list[ToolReport], load: OutcomeCounts) -> StressReport:
    return StressReport(
        target=TargetInfo(kind="server", description="mcp-server-time", transport="stdio"),
        options=StressOptionsRecord(
            calls=3, load_calls=20, concurrency=8, call_timeout_s=5.0, seed=0, no_writes=False, fail_on=Severity.HIGH
        ),
        started_at="2026-01-01T00:00:00+00:00",
        duration_s=1.0,
        tools=tools,
        findings=[],
        state=StateCheck(status=CheckStatus.SKIPPED, detail="-"),
        load=LoadSummary(status=CheckStatus.PASSED, calls=load.total, concurrency=8, server_up=True, outcomes=load),
    )


def _summary(report: StressReport) -> str:
    console = Console(file=io.StringIO(), width=200)
    print_summary(report, console)
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


def test_a_run_where_nothing_succeeded_says_so() -> None:
    refused = OutcomeCounts(tool_error=3)
    tools = [ToolReport(name=n, writes=False, valid=refused, load=OutcomeCounts(tool_error=10)) for n in ("a", "b")]
    report = _report(tools, OutcomeCounts(tool_error=20))
    text = _summary(report)
    assert "20 calls at concurrency 8 in 0.0 s: 0 ok, 20 tool errors (isError), 0 failures" in text
    assert "not exercised: no valid call of a, b got a result" in text
    assert "PASS: nothing at or above high, but no tool answered a valid call with a result" in text
    assert report.passed and report.not_exercised() == ["a", "b"]  # the severity scheme is unchanged


def test_a_run_where_some_tools_succeeded_names_the_others() -> None:
    tools = [
        ToolReport(name="ok", writes=False, valid=OutcomeCounts(result=2, tool_error=1)),
        ToolReport(name="refused", writes=False, valid=OutcomeCounts(tool_error=3)),
        ToolReport(name="skipped", writes=True, skipped="--no-writes"),
    ]
    text = _summary(_report(tools, OutcomeCounts(result=5, tool_error=5)))
    assert "5 ok, 5 tool errors (isError), 0 failures" in text
    assert "not exercised: no valid call of refused got a result" in text
    assert "PASS: nothing at or above high; 1 of 2 tools not exercised" in text


def test_values_given_in_descriptions_are_tried_first() -> None:
    # The input schema of mcp-server-time's convert_time: the server refuses any other timezone or time.
    zone = "Source IANA timezone name (e.g., 'America/New_York', 'Europe/London'). Use 'UTC' if none."
    schema = {
        "type": "object",
        "properties": {
            "source_timezone": {"type": "string", "description": zone},
            "time": {"type": "string", "description": "Time to convert in 24-hour format (HH:MM)"},
            "target_timezone": {"type": "string", "description": "Target IANA timezone name (e.g., 'Asia/Tokyo')"},
            "label": {"type": "string", "description": "the user's label for it"},
        },
        "required": ["source_timezone", "time", "target_timezone"],
    }
    typical = CaseGenerator(schema, seed=0, tool="convert_time").valid_cases(1)[0]
    assert typical.arguments == {
        "source_timezone": "America/New_York",
        "time": "14:30",
        "target_timezone": "Asia/Tokyo",
    }
    full = CaseGenerator(schema, seed=0, tool="convert_time").valid_cases(2)[1]
    assert full.arguments["label"] == "test"  # an apostrophe is not a quote


# -- 3. run.log ------------------------------------------------------------------------------------


def test_out_dir_gets_a_run_log_of_json_lines(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["stress", "--domain", "retail", "--calls", "2", "--load-calls", "0", "--out", str(out)]) == 0
    events = [json.loads(line) for line in (out / "run.log").read_text().splitlines()]
    assert [e["event"] for e in events] == ["stress_started", "stress_finished"]
    assert all(e["command"] == "stress" for e in events)
    assert events[-1]["passed"] is True
