"""``dialogsim eval`` end to end: every way in, correct and broken agents, trials and resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from rich.console import Console

from schemas import AgentMessage, DialogueRecord, ProviderCall, ToolCall, ToolResult, UserMessage, Verdict
from schemas.errors import ConfigError
from simulator.cli import main as cli_main
from simulator.eval import EvalConfig, pass_at_k, pass_hat_k, render_results, run_eval, split_trial_id
from simulator.eval.evaluate import EVAL_FILE, RECORDS_DIR, RESULTS_FILE
from simulator.run.config import RunConfig
from simulator.run.dataset import DATASET_FILE, iter_records
from simulator.run.execute import execute_run
from simulator.run.plan import prepare_run
from tests.simulator.eval.conftest import (
    PYTHON_EXAMPLE,
    cmd_example,
    cmd_test_agent,
    python_test_agent,
    write_shop_scenarios,
)

pytestmark = pytest.mark.anyio


def _records(out: Path) -> dict[str, DialogueRecord]:
    return {r.id: r for _, r in iter_records(out / RECORDS_DIR)}


def _tool_events(record: DialogueRecord) -> list[dict[str, Any]]:
    """The tool events as the server recorded them, without timestamps and bus positions."""
    out = []
    for event in record.events:
        if isinstance(event, ToolCall | ToolResult):
            raw = msgspec.to_builtins(event)
            for key in ("ts", "seq", "duration_ms"):
                raw.pop(key, None)
            out.append(raw)
    return out


def _config(tmp_path: Path, name: str, agent: str, **kw: Any) -> EvalConfig:
    return EvalConfig(agent=agent, out_dir=tmp_path / name, progress=False, **kw)


# --------------------------------------------------------------------------- the ways in


async def test_python_example_passes_every_allowed_task_and_fails_the_forbidden_ones(tmp_path: Path) -> None:
    """The example acts on the user's parsed requests without checking the rules: it does what it is
    asked, so it fails the tasks it should have refused, and the forbidden change it made fails the
    full-state check of its dialogue; every allowed task of a dialogue whose state matched passes."""
    outcome = await run_eval(_config(tmp_path, "py", PYTHON_EXAMPLE, seed=1, limit=6))
    summary = outcome.results.summary
    assert summary.scenarios == 6 and summary.dialogues == 6
    assert {s.domain for s in outcome.results.scenarios} == {"clinic", "retail", "travel"}
    assert summary.failed == 0
    allowed, forbidden = [], []
    for record in _records(tmp_path / "py").values():
        refused = {t.id for t in record.scenario.tasks if t.expected.refusal}
        state_matched = record.state is not None and record.state.verdict is Verdict.PASS
        for o in record.outcomes:
            if o.task_id in refused:
                forbidden.append(o.success)
            elif state_matched:
                allowed.append(o.success)
        if refused and not state_matched:
            assert record.state is not None and record.state.diff, record.id  # the change it should not have made
    assert allowed and all(allowed)
    assert forbidden and not any(forbidden)
    for record in _records(tmp_path / "py").values():
        assert record.brains["agent"] == PYTHON_EXAMPLE
        calls = [e for e in record.events if isinstance(e, ToolCall)]
        results = {e.call_id for e in record.events if isinstance(e, ToolResult)}
        assert calls and {c.call_id for c in calls} == results


async def test_cmd_example_over_the_http_host_is_recorded_like_the_built_in_agent(
    tmp_path: Path, shop_file: Path
) -> None:
    """The standalone script calls tools with the official MCP client over the host's URL and token."""
    cmd = await run_eval(_config(tmp_path, "cmd", cmd_example(), source=str(shop_file), seed=3))
    built_in = await run_eval(_config(tmp_path, "off", "offline", source=str(shop_file), seed=3, mistake_rate=0.0))
    assert cmd.results.summary.dialogue_pass_hat["1"].value == 1.0
    assert cmd.results.summary.failed == 0
    assert built_in.results.summary.dialogue_pass_hat["1"].value == 1.0
    (ours,) = _records(tmp_path / "cmd").values()
    (theirs,) = _records(tmp_path / "off").values()
    assert ours.brains["agent"].startswith("cmd:")
    # Same calls, ids, arguments, results, written rows: the server records an outside
    # agent's calls exactly as it records the built-in agent's.
    assert _tool_events(ours) == _tool_events(theirs)
    assert [m.role for m in ours.messages if m.role == "tool"] == [m.role for m in theirs.messages if m.role == "tool"]


@pytest.mark.parametrize("tool_server,flags", [("host", ("--stdio",)), ("pool", ())])
async def test_cmd_example_over_stdio(
    tmp_path: Path, shop_file: Path, tool_server: str, flags: tuple[str, ...]
) -> None:
    """Spawning DIALOGSIM_MCP_STDIO: a relay to the host's server, or to a pre-started pool worker."""
    http = await run_eval(_config(tmp_path, "py", PYTHON_EXAMPLE, source=str(shop_file), seed=3))
    stdio = await run_eval(
        _config(tmp_path, "stdio", cmd_example(*flags), source=str(shop_file), seed=3, tool_server=tool_server)
    )
    assert stdio.results.summary.dialogue_pass_hat["1"].value == 1.0
    (ours,) = _records(tmp_path / "stdio").values()
    (theirs,) = _records(tmp_path / "py").values()
    assert _tool_events(ours) == _tool_events(theirs)
    assert http.results.summary.tool_calls == stdio.results.summary.tool_calls > 0


async def test_python_agent_on_the_stdio_pool(tmp_path: Path, shop_file: Path) -> None:
    outcome = await run_eval(_config(tmp_path, "pool", PYTHON_EXAMPLE, source=str(shop_file), tool_server="pool"))
    assert outcome.results.summary.dialogue_pass_hat["1"].value == 1.0


async def test_text_only_hides_the_users_acts_from_the_agent(tmp_path: Path, shop_file: Path) -> None:
    """The example agent reads the offline user's acts; with --text-only it gets words alone."""
    shown = await run_eval(_config(tmp_path, "acts", PYTHON_EXAMPLE, source=str(shop_file)))
    hidden = await run_eval(_config(tmp_path, "text", PYTHON_EXAMPLE, source=str(shop_file), text_only=True))
    assert shown.results.summary.dialogue_pass_hat["1"].value == 1.0
    assert hidden.results.summary.dialogue_pass_hat["1"].value == 0.0
    # What the agent was given is in the results and in the summary table, either way.
    for name, text_only, given in [
        ("acts", False, "user's words and dialogue acts"),
        ("text", True, "user's words only"),
    ]:
        saved = json.loads((tmp_path / name / RESULTS_FILE).read_text())["summary"]
        assert saved["text_only"] is text_only
        outcome = shown if name == "acts" else hidden
        console = Console(width=200, record=True)
        console.print(render_results(outcome.results)[0])
        (row,) = [line for line in console.export_text().splitlines() if "agent given" in line]
        assert given in row
    for record in _records(tmp_path / "text").values():
        assert record.scenario.tasks  # same scenario, the user still spoke in acts...
        assert any(e.acts for e in record.events if isinstance(e, UserMessage))
        assert not [e for e in record.events if isinstance(e, ToolCall)]  # ...the agent never saw them


# --------------------------------------------------------------------------- agents that fail


async def test_an_agent_that_does_nothing_fails_the_tasks_that_need_writes(tmp_path: Path, shop_file: Path) -> None:
    outcome = await run_eval(_config(tmp_path, "idle", python_test_agent("make_idle"), source=str(shop_file)))
    (scenario,) = outcome.results.scenarios
    tasks = {t.task_id: t for t in scenario.tasks}
    assert tasks["t1"].passed == 0  # the status change (a write)
    assert tasks["t1"].failed_assertions == {"order 10 is shipped": 1}
    assert scenario.passed == 0
    assert outcome.results.summary.tool_calls == 0
    assert outcome.results.summary.failed == 0  # it did not break: it just did nothing


async def test_an_agent_that_corrupts_a_row_fails(tmp_path: Path, shop_file: Path) -> None:
    outcome = await run_eval(_config(tmp_path, "bad", python_test_agent("make_corrupting"), source=str(shop_file)))
    (scenario,) = outcome.results.scenarios
    tasks = {t.task_id: t for t in scenario.tasks}
    assert tasks["t0"].passed == tasks["t2"].passed == 1
    assert tasks["t1"].passed == 0 and tasks["t1"].failed_assertions == {"order 10 is shipped": 1}
    assert outcome.results.summary.dialogue_pass_hat["1"].value == 0.0
    (record,) = _records(tmp_path / "bad").values()
    last_call = [e for e in record.events if isinstance(e, ToolCall)][-1]
    assert last_call.arguments == {"order_id": 10, "status": "cancelled"}


@pytest.mark.parametrize("agent", [cmd_test_agent("idle"), python_test_agent("make_costly_idle")])
async def test_tokens_and_cost_an_agent_reports_are_counted(tmp_path: Path, shop_file: Path, agent: str) -> None:
    outcome = await run_eval(_config(tmp_path, "costly", agent, source=str(shop_file)))
    (record,) = _records(tmp_path / "costly").values()
    calls = [e for e in record.events if isinstance(e, ProviderCall)]
    replies = [e for e in record.events if isinstance(e, AgentMessage)]
    assert len(calls) == len(replies) > 0 and {c.role for c in calls} == {"agent"}
    summary = outcome.results.summary
    assert (summary.input_tokens, summary.output_tokens) == (10 * len(calls), 2 * len(calls))
    assert summary.cost_usd == pytest.approx(0.5 * len(calls))


@pytest.mark.parametrize(
    "mode,reason",
    [
        ("crash-first", "exited (code 3) without answering; stderr: ...cmd_agents: crashing on purpose"),
        ("hang-first", "did not answer within 1.6 s and was killed"),
    ],
)
async def test_a_crashing_or_hanging_cmd_agent_fails_with_a_reason_and_the_evaluation_goes_on(
    tmp_path: Path, shop_file: Path, mode: str, reason: str
) -> None:
    outcome = await run_eval(
        _config(tmp_path, mode, cmd_test_agent(mode), source=str(shop_file), trials=2, turn_timeout_s=2.0)
    )
    summary = outcome.results.summary
    (failure,) = summary.failures
    assert failure.dialogue_id == "shop-0~t1"
    assert failure.reason == "agent_failure"
    assert reason in failure.detail
    records = _records(tmp_path / mode)
    assert records["shop-0~t1"].termination == "agent_failure"
    # The evaluation went on: trial 2 ran to its end (the agent idled there; the user gave up).
    assert records["shop-0~t2"].termination == "user_gave_up"
    assert summary.dialogues == 2 and summary.terminations == {"agent_failure": 1, "user_gave_up": 1}
    assert json.loads((tmp_path / mode / RESULTS_FILE).read_text())["summary"]["failed"] == 1


@pytest.mark.parametrize(
    "agent,reason",
    [
        (cmd_test_agent("garbage"), 'expected {"type": "agent", "text": "..."} on stdout'),
        (python_test_agent("make_raising"), "RuntimeError: the agent's own bug"),
        (python_test_agent("not_an_agent"), "which has no async reply"),
    ],
)
async def test_broken_agents_are_recorded_as_failed(tmp_path: Path, shop_file: Path, agent: str, reason: str) -> None:
    outcome = await run_eval(_config(tmp_path, "broken", agent, source=str(shop_file)))
    (failure,) = outcome.results.summary.failures
    assert failure.reason == "agent_failure"
    assert reason in failure.detail


async def test_a_cmd_program_that_cannot_be_run_is_recorded_as_failed(tmp_path: Path, shop_file: Path) -> None:
    """It exists and is executable, so it passes the check made up front; starting it fails per dialogue."""
    program = tmp_path / "not-a-program"
    program.write_bytes(b"\x00\x01 not an executable format")
    program.chmod(0o755)
    outcome = await run_eval(_config(tmp_path, "broken", f"cmd:{program} --flag", source=str(shop_file)))
    (failure,) = outcome.results.summary.failures
    assert failure.reason == "agent_failure"
    assert f"cannot start {str(program)!r}" in failure.detail


@pytest.mark.parametrize(
    "agent",
    [
        "python:no.such.module:factory",
        f"python:{Path(__file__)}:missing",
        "cmd:",
        "nosuchscheme:x",
        "python:nocolon",
        "cmd:/no/such/program --flag",
        "cmd:no-such-program-of-dialogsim --flag",
        f"cmd:{Path(__file__).parent} --flag",  # a directory
        f"cmd:{Path(__file__)}",  # a file without the execute bit
    ],
)
async def test_bad_agent_specs_are_refused_before_any_work(tmp_path: Path, agent: str) -> None:
    with pytest.raises(ConfigError):
        await run_eval(_config(tmp_path, "x", agent, source="retail", limit=1))
    assert not (tmp_path / "x").exists()


def test_a_cmd_program_not_found_is_named_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x"
    argv = ["eval", "--agent", "cmd:'/nonexistent dir/prog' --flag", "--scenarios", "retail", "--seed", "1"]
    assert cli_main([*argv, "--out", str(out), "--no-progress"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "'/nonexistent dir/prog'" in line
    assert not out.exists()


# --------------------------------------------------------------------------- trials, determinism, resume


async def test_k_trials_give_the_right_pass_hat_k(tmp_path: Path) -> None:
    """The flaky agent passes trials 1 and 3 and fails trial 2 of each of two scenarios."""
    source = write_shop_scenarios(tmp_path / "two.json", copies=2)
    outcome = await run_eval(_config(tmp_path, "flaky", python_test_agent("make_flaky"), source=str(source), trials=3))
    summary = outcome.results.summary
    records = _records(tmp_path / "flaky")
    assert sorted(records) == [f"shop-{i}~t{k}" for i in range(2) for k in (1, 2, 3)]
    for scenario in outcome.results.scenarios:
        passed = [r.success for r in records.values() if split_trial_id(r.id)[0] == scenario.scenario_id]
        assert scenario.passed == sum(passed) == 2 and scenario.trials == 3
    assert summary.dialogue_pass_hat["1"].value == pytest.approx(2 / 3)
    assert summary.dialogue_pass_hat["2"].value == pytest.approx(pass_hat_k(3, 2, 2)) == pytest.approx(1 / 3)
    assert summary.dialogue_pass_hat["3"].value == 0.0
    assert summary.dialogue_pass_at["3"].value == pytest.approx(pass_at_k(3, 2, 3)) == 1.0
    assert summary.dialogue_success.value == pytest.approx(4 / 6)


async def test_same_seed_same_scenarios_and_user_and_the_run_resumes(tmp_path: Path) -> None:
    first = _config(tmp_path, "a", "offline", source="retail", limit=2, trials=3, seed=5, mistake_rate=0.5)
    outcome = await run_eval(first)
    again = await run_eval(
        _config(tmp_path, "b", "offline", source="retail", limit=2, trials=3, seed=5, mistake_rate=0.5)
    )
    a, b = _records(tmp_path / "a"), _records(tmp_path / "b")
    assert sorted(a) == sorted(b) and len(a) == 6
    for key in a:
        assert a[key].scenario == b[key].scenario
        assert [e.text for e in a[key].events if isinstance(e, UserMessage)] == [
            e.text for e in b[key].events if isinstance(e, UserMessage)
        ]
    assert outcome.results == again.results
    # The trials of one scenario share its tasks but not their dialogue seeds.
    trials = [r.scenario for r in a.values() if split_trial_id(r.id)[0] == "retail-5-00000"]
    assert len({msgspec.json.encode(s.tasks) for s in trials}) == 1 and len({s.seed for s in trials}) == 3

    # Resuming does nothing new; more trials extend the evaluation; other settings are refused.
    resumed = await run_eval(first)
    assert resumed.run.generated == 0 and resumed.run.skipped == 6
    assert resumed.results == outcome.results
    extended = await run_eval(
        _config(tmp_path, "a", "offline", source="retail", limit=2, trials=4, seed=5, mistake_rate=0.5)
    )
    assert extended.run.generated == 2 and extended.results.summary.dialogues == 8
    with pytest.raises(ConfigError, match="other settings"):
        await run_eval(_config(tmp_path, "a", "offline", source="clinic", limit=2, trials=3, seed=5))


async def test_a_generated_dataset_is_replayed(tmp_path: Path) -> None:
    dataset = tmp_path / "d"
    # Seed 7: no request the policy forbids (the example agent refuses nothing).
    await execute_run(prepare_run(RunConfig(dialogues=2, domains=("travel",), seed=7, out_dir=dataset)), progress=False)
    generated = {r.scenario.id: r.scenario for _, r in iter_records(dataset)}
    outcome = await run_eval(_config(tmp_path, "replay", PYTHON_EXAMPLE, source=str(dataset), trials=2))
    assert {s.scenario_id for s in outcome.results.scenarios} == set(generated)
    for record in _records(tmp_path / "replay").values():
        assert record.scenario.tasks == generated[split_trial_id(record.id)[0]].tasks
    assert outcome.results.summary.dialogue_pass_hat["2"].value == 1.0


def test_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "e"
    argv = ["eval", "--agent", "offline", "--scenarios", "clinic", "--limit", "1", "--trials", "2"]
    assert cli_main([*argv, "--seed", "1", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "dialogue pass^2" in printed and "results in" in printed
    assert "user's words and dialogue acts" in printed
    assert {p.name for p in out.iterdir()} == {EVAL_FILE, RECORDS_DIR, RESULTS_FILE}
    assert (out / RECORDS_DIR / DATASET_FILE).is_file()
    results = json.loads((out / RESULTS_FILE).read_text())
    assert results["summary"]["trials"] == 2 and len(results["scenarios"]) == 1
    assert (
        cli_main(["eval", "--agent", "offline", "--scenarios", "nowhere", "--seed", "1", "--out", str(tmp_path / "n")])
        == 2
    )
    assert "not a file, a dataset directory or a built-in domain" in capsys.readouterr().err


@pytest.mark.parametrize("tool_server", ["host", "pool"])
async def test_calls_to_tools_that_do_not_exist_are_protocol_errors_not_tool_calls(
    tmp_path: Path, tool_server: str
) -> None:
    from schemas import ErrorEvent

    outcome = await run_eval(
        _config(tmp_path, tool_server, python_test_agent("make_inventing"), seed=1, limit=1, tool_server=tool_server)
    )
    (record,) = _records(tmp_path / tool_server).values()
    assert "JSON-RPC" in record.messages[1].content or "MCPError" in record.messages[1].content
    protocol = [e for e in record.events if isinstance(e, ErrorEvent) and e.where == "tools/call"]
    assert protocol and all(e.error_type == "unknown_tool" for e in protocol)
    assert not any(isinstance(e, ToolCall) for e in record.events)
    assert record.metrics.tool_calls == 0 and outcome.results.summary.tool_calls == 0


# --------------------------------------------------------------------------- the full state, the floors


@pytest.mark.parametrize(
    "agent,diff",
    [
        ("make_collateral", ["orders pk=11: status 'shipped' → 'cancelled'"]),
        ("make_extra_insert", ["+ customers pk=3"]),
    ],
)
async def test_a_right_change_plus_an_unasked_one_fails_the_write_not_the_reads(
    tmp_path: Path, shop_file: Path, agent: str, diff: list[str]
) -> None:
    outcome = await run_eval(_config(tmp_path, agent, python_test_agent(agent), source=str(shop_file)))
    (scenario,) = outcome.results.scenarios
    tasks = {t.task_id: t for t in scenario.tasks}
    assert tasks["t1"].passed == 0 and tasks["t1"].failed_assertions == {}  # its own assertion holds
    assert tasks["t0"].passed == tasks["t2"].passed == 1  # the reads are not about the state
    assert scenario.passed == 0 and outcome.results.summary.done_but_failed == 1
    (record,) = _records(tmp_path / agent).values()
    assert record.termination.value == "user_done" and not record.success
    assert record.state is not None and [d.text for d in record.state.diff] == diff
    (state,) = [c for c in record.outcomes[1].checks if c.kind == "state"]
    assert [d.text for d in state.diff] == diff


async def test_floors_run_beside_the_agent_and_are_reported_with_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from simulator.eval.evaluate import FLOORS_DIR

    out = tmp_path / "floors"
    outcome = await run_eval(_config(tmp_path, "floors", "offline", source="retail", limit=2, seed=2, floors=True))
    assert set(outcome.results.floors) == {"baseline:silent", "baseline:guess", "baseline:random", "baseline:refuse"}
    for spec, floor in outcome.results.floors.items():
        assert floor.agent == spec and floor.scenarios == 2 and floor.task_success.value == 0.0
    assert outcome.results.summary.task_success.value == 1.0
    assert {p.name for p in (out / FLOORS_DIR).iterdir()} == {"silent", "guess", "random", "refuse"}
    saved = json.loads((out / RESULTS_FILE).read_text())
    assert set(saved["floors"]) == set(outcome.results.floors)
    console = Console(width=200)
    for table in render_results(outcome.results):
        console.print(table)
    printed = capsys.readouterr().out
    assert "floor silent" in printed and "floor guess" in printed and "floor random" in printed
    # Resuming runs nothing again, floors included.
    again = await run_eval(_config(tmp_path, "floors", "offline", source="retail", limit=2, seed=2, floors=True))
    assert again.run.generated == 0 and again.results == outcome.results


async def test_stats_and_the_eval_summary_count_endings_the_same_way(tmp_path: Path, shop_file: Path) -> None:
    from simulator.summary import summarize

    for name, agent in [("ok", "offline"), ("collateral", python_test_agent("make_collateral"))]:
        outcome = await run_eval(_config(tmp_path, name, agent, source=str(shop_file), trials=2))
        records = list(_records(tmp_path / name).values())
        summary = summarize(records)
        scored = outcome.results.summary
        assert summary.terminations == scored.terminations
        assert summary.dialogue_success_rate == scored.dialogue_success.value
        assert summary.done_but_failed == scored.done_but_failed
        assert sum(r.success for r in records) == round(scored.dialogue_pass_hat["1"].value * len(records))


def _as_version_2(line: bytes) -> bytes:
    """A record line as dialogsim wrote it before version 3 (no checks, no state)."""
    raw = json.loads(line)
    raw["version"] = 2
    raw.pop("state", None)
    raw.pop("migrated_from", None)
    for outcome in raw["outcomes"]:
        outcome.pop("checks", None)
    return json.dumps(raw).encode() + b"\n"


async def test_version_2_records_are_migrated_as_they_are_read(tmp_path: Path) -> None:
    from simulator.run.dataset import MANIFEST_FILE, scan_dataset

    dataset = tmp_path / "old"
    await execute_run(prepare_run(RunConfig(dialogues=3, domains=("retail",), seed=4, out_dir=dataset)), progress=False)
    path = dataset / DATASET_FILE
    path.write_bytes(b"".join(_as_version_2(line) for line in path.read_bytes().splitlines(keepends=True)))
    manifest = json.loads((dataset / MANIFEST_FILE).read_text())
    manifest["record_version"] = 2
    (dataset / MANIFEST_FILE).write_text(json.dumps(manifest))
    scan = scan_dataset(path)
    assert len(scan.done) == 3 and scan.truncate_at is None
    records = [r for _, r in iter_records(dataset)]
    assert all(r.version == 3 and r.migrated_from == 2 and r.state is None for r in records)
    for record in records:
        for task, outcome in zip(record.scenario.tasks, record.outcomes, strict=True):
            kinds = [c.kind for c in outcome.checks]
            assert kinds.count("assertion") == len(task.expected.assertions)
            assert all(c.verdict == "pass" for c in outcome.checks) == outcome.success
    # An evaluation replays their scenarios, and branching reads them.
    replay = await run_eval(_config(tmp_path, "replay", "offline", source=str(dataset)))
    assert replay.results.summary.scenarios == 3
    from simulator.run.branch import branch_scenarios

    _, branched = branch_scenarios(dataset, at_turn=6, variants=1, seed=1)
    assert branched and all(s.branched_from for s in branched)
