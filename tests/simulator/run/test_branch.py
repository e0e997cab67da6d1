"""Branching: continuing recorded dialogues from turn K with the database state rebuilt by
replaying the recorded write calls, checked against the state the original dialogue
really had at that turn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

import simulator.dialogue.runner as runner_module
from schemas import (
    AgentMessage,
    DialogueRecord,
    DialogueStarted,
    Effect,
    Environment,
    Event,
    FeedbackKind,
    Scenario,
    TaskStarted,
    TerminationReason,
    ToolCall,
    ToolInvocation,
    ToolResult,
    UserFeedback,
    UserMessage,
)
from schemas.errors import ConfigError
from simulator.cli import main
from simulator.dialogue.recorder import messages_from_events
from simulator.dialogue.runner import DialogueConfig, run_dialogue
from simulator.offline.acts import Request, decode_acts
from simulator.run.branch import branch_point, branch_scenarios
from simulator.run.config import RunConfig
from simulator.run.dataset import DATASET_FILE, iter_records
from simulator.run.execute import execute_run
from simulator.run.plan import prepare_run
from toolservers.database import open_database
from toolservers.executor import ToolExecutor
from toolservers.transports import Connected

AT_TURN = 16
CONVERSATION = (UserMessage, AgentMessage, ToolCall, ToolResult)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four recorded dialogues (retail and travel, seed 7), written by a real run."""
    out = tmp_path_factory.mktemp("branch") / "source"
    prepared = prepare_run(RunConfig(dialogues=4, seed=7, out_dir=out, domains=("retail", "travel"), concurrency=2))
    anyio.run(lambda: execute_run(prepared, progress=False))
    return out


@pytest.fixture(scope="module")
def records(dataset: Path) -> dict[str, DialogueRecord]:
    return {r.id: r for _, r in iter_records(dataset)}


@pytest.fixture(scope="module")
def branched(dataset: Path) -> tuple[dict[str, Environment], list[Scenario]]:
    envs, scenarios = branch_scenarios(dataset, at_turn=AT_TURN, variants=2, seed=3)
    return {e.id: e for e in envs}, scenarios


def prefix_of(record: DialogueRecord, at_turn: int) -> list[Event]:
    """The conversation up to the last agent reply within the first ``at_turn`` turns,
    computed here independently of ``branch_point``."""
    turns = 0
    last_agent = -1
    for i, event in enumerate(record.events):
        if isinstance(event, CONVERSATION):
            turns += 1
            if turns > at_turn:
                break
            if isinstance(event, AgentMessage):
                last_agent = i
    return record.events[: last_agent + 1]


def successful_writes(events: list[Event], env: Environment) -> list[ToolInvocation]:
    calls = {e.call_id: e for e in events if isinstance(e, ToolCall)}
    return [
        ToolInvocation(tool=calls[e.call_id].tool, arguments=calls[e.call_id].arguments)
        for e in events
        if isinstance(e, ToolResult) and not e.is_error and env.tool(e.tool).effect is Effect.WRITE
    ]


def rebuilt(env: Environment, actions: list[ToolInvocation]) -> dict[str, list[tuple[Any, ...]]]:
    db = open_database(env.database)
    try:
        executor = ToolExecutor(env, db)
        for action in actions:
            executor.call(action.tool, action.arguments)
        return db.snapshot()
    finally:
        db.close()


# --------------------------------------------------------------------------- branch_point


def test_branch_point_ends_on_the_last_agent_reply_within_k_turns() -> None:
    events: list[Event] = [
        DialogueStarted(scenario_id="s", environment_id="e", mode="user-oriented"),
        TaskStarted(task_id="t0"),
        UserMessage(text="u1"),  # turn 1
        AgentMessage(text="a1"),  # turn 2 -> cut 4
        UserFeedback(feedback=FeedbackKind.CONFIRM, task_id="t0"),
        UserMessage(text="u2"),  # turn 3
        ToolCall(call_id="c", tool="x", arguments={}),  # turn 4
        ToolResult(call_id="c", tool="x", is_error=False, text=""),  # turn 5
        AgentMessage(text="a2"),  # turn 6 -> cut 9
        UserMessage(text="u3"),  # turn 7
    ]
    assert [branch_point(events, k) for k in (1, 2, 3, 5, 6, 7, 100)] == [0, 4, 4, 4, 9, 9, 9]


# --------------------------------------------------------------------------- scenarios


def test_branched_scenarios_continue_a_prefix_of_at_most_k_turns(
    records: dict[str, DialogueRecord], branched: tuple[dict[str, Environment], list[Scenario]]
) -> None:
    _, scenarios = branched
    assert sorted(s.id for s in scenarios) == sorted(f"{r}-b{AT_TURN}-v{v}" for r in records for v in (0, 1))
    for scenario in scenarios:
        source = records[scenario.branched_from or ""]
        history = [msgspec.convert(h, type=Event) for h in scenario.initial_state.history]
        assert 0 < len(history) <= AT_TURN
        assert all(isinstance(e, CONVERSATION) for e in history)
        assert isinstance(history[-1], AgentMessage)
        expected = [e for e in prefix_of(source, AT_TURN) if isinstance(e, CONVERSATION)]
        assert history == expected
        assert (scenario.mode, scenario.environment_id) == (source.scenario.mode, source.scenario.environment_id)
        assert scenario.tasks
        if scenario.id.endswith("-v0"):
            assert scenario.persona == source.scenario.persona


def test_db_actions_are_exactly_the_successful_writes_of_the_prefix(
    records: dict[str, DialogueRecord], branched: tuple[dict[str, Environment], list[Scenario]]
) -> None:
    envs, scenarios = branched
    for scenario in scenarios:
        source = records[scenario.branched_from or ""]
        env = envs[scenario.environment_id]
        assert scenario.initial_state.db_actions == successful_writes(prefix_of(source, AT_TURN), env)
    assert any(s.initial_state.db_actions for s in scenarios), "no write in any prefix: the sample shows nothing"
    # writes after the cut are not replayed
    longer = [
        s
        for s in scenarios
        if len(successful_writes(records[s.branched_from or ""].events, envs[s.environment_id]))
        > len(s.initial_state.db_actions)
    ]
    assert longer


def test_branching_is_deterministic_by_seed(dataset: Path) -> None:
    _, a = branch_scenarios(dataset, at_turn=AT_TURN, variants=2, seed=3)
    _, b = branch_scenarios(dataset, at_turn=AT_TURN, variants=2, seed=3)
    _, c = branch_scenarios(dataset, at_turn=AT_TURN, variants=2, seed=4)
    assert msgspec.json.encode(a) == msgspec.json.encode(b)
    assert [s.tasks for s in a] != [s.tasks for s in c]
    # the two variants of one source plan different continuations
    by_source: dict[str, list[Scenario]] = {}
    for s in a:
        by_source.setdefault(s.branched_from or "", []).append(s)
    assert any(msgspec.json.encode(v0.tasks) != msgspec.json.encode(v1.tasks) for v0, v1 in by_source.values())


# --------------------------------------------------------------------------- the rebuilt state


@pytest.mark.anyio
async def test_replaying_the_writes_rebuilds_the_state_the_dialogue_had_at_turn_k(
    monkeypatch: pytest.MonkeyPatch,
    records: dict[str, DialogueRecord],
    branched: tuple[dict[str, Environment], list[Scenario]],
) -> None:
    envs, scenarios = branched
    live: list[Connected] = []
    real_connect = runner_module.connect_tool_server

    @asynccontextmanager
    async def spying(*args: Any, **kwargs: Any) -> AsyncIterator[Connected]:
        async with real_connect(*args, **kwargs) as conn:
            live.append(conn)
            yield conn

    monkeypatch.setattr(runner_module, "connect_tool_server", spying)

    checked = 0
    for scenario in (s for s in scenarios if s.id.endswith("-v0")):
        env = envs[scenario.environment_id]
        source = records[scenario.branched_from or ""]
        last = prefix_of(source, AT_TURN)[-1]

        # 1. The original dialogue, run again: the database when its turn-K reply was published.
        at_k: dict[str, Any] = {}

        async def watch_original(event: Event, seq: int = last.seq, at_k: dict[str, Any] = at_k) -> None:
            if event.seq == seq:
                assert isinstance(event, AgentMessage)
                at_k["text"] = event.text
                at_k["db"] = live[-1].database.snapshot()

        await run_dialogue(source.scenario, env, DialogueConfig(), on_event=watch_original)
        assert isinstance(last, AgentMessage) and at_k["text"] == last.text  # the rerun is the same dialogue

        # 2. The state rebuilt offline from the branched scenario's DB actions.
        assert rebuilt(env, scenario.initial_state.db_actions) == at_k["db"]

        # 3. The branched dialogue's own server, right after the history, before anything new ran.
        start: dict[str, Any] = {}
        first_new = 1 + len(scenario.initial_state.history)

        async def watch_branch(event: Event, start: dict[str, Any] = start, seq: int = first_new) -> None:
            if event.seq == seq:
                assert not isinstance(event, ToolCall | ToolResult)
                start["db"] = live[-1].database.snapshot()

        record = await run_dialogue(scenario, env, DialogueConfig(), on_event=watch_branch)
        assert start["db"] == at_k["db"]
        assert record.success, (scenario.id, record.termination, record.outcomes)
        if scenario.initial_state.db_actions:
            assert at_k["db"] != rebuilt(env, [])  # the writes changed something: the check means something
            checked += 1
    assert checked >= 1


@pytest.mark.anyio
async def test_a_branched_dialogue_starts_with_the_recorded_history(
    branched: tuple[dict[str, Environment], list[Scenario]],
) -> None:
    envs, scenarios = branched
    for scenario in scenarios[:4]:
        record = await run_dialogue(scenario, envs[scenario.environment_id], DialogueConfig())
        assert record.termination is TerminationReason.USER_DONE and record.success, (scenario.id, record.outcomes)
        history = [msgspec.convert(h, type=Event) for h in scenario.initial_state.history]
        replayed = record.events[1 : 1 + len(history)]
        assert [type(e) for e in replayed] == [type(e) for e in history]
        for old, new in zip(history, replayed, strict=True):
            if isinstance(old, ToolCall | ToolResult):
                assert isinstance(new, ToolCall | ToolResult)
                assert new.call_id == f"hist_{old.call_id}"
            else:
                assert isinstance(new, UserMessage | AgentMessage) and isinstance(old, UserMessage | AgentMessage)
                assert new.text == old.text

        def said(messages: list[Any]) -> list[tuple[Any, ...]]:
            return [(m.role, m.content, [(c.name, c.arguments) for c in m.tool_calls]) for m in messages]

        prefix = messages_from_events(history)
        assert said(record.messages[: len(prefix)]) == said(prefix)
        assert len(record.messages) > len(prefix)
        # the continuation goes straight to the new tasks
        first = next(e for e in record.events[1 + len(history) :] if isinstance(e, UserMessage))
        asked = [a.step for a in decode_acts(first.acts) if isinstance(a, Request)]
        assert asked and asked[0] == scenario.tasks[0].chain[0].id
        assert {e.task_id for e in record.events if isinstance(e, TaskStarted)} == {t.id for t in scenario.tasks}


# --------------------------------------------------------------------------- through the command line


def test_generate_branch_from_writes_the_branched_dialogues(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "branched"
    argv = ["generate", "--branch-from", str(dataset), "--at-turn", str(AT_TURN), "--variants", "2"]
    assert main([*argv, "--seed", "3", "--out", str(out), "--no-progress"]) == 0
    written = [r for _, r in iter_records(out)]
    assert len(written) == 8
    assert all(r.scenario.branched_from for r in written)
    assert all(r.success for r in written), [(r.id, r.termination) for r in written if not r.success]
    capsys.readouterr()


def test_a_missing_branch_source_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(ConfigError):
        branch_scenarios(missing, at_turn=4, variants=1, seed=0)
    not_a_dataset = tmp_path / "empty"
    not_a_dataset.mkdir()
    with pytest.raises(ConfigError):
        branch_scenarios(not_a_dataset, at_turn=4, variants=1, seed=0)
    out = tmp_path / "out"
    with pytest.raises(ConfigError):
        prepare_run(RunConfig(dialogues=0, seed=0, out_dir=out, branch_from=missing, at_turn=4))
    assert not out.exists()
    code = main(["generate", "--branch-from", str(missing), "--at-turn", "4", "--seed", "0", "--out", str(out)])
    assert code == 2
    assert not out.exists()
    assert "nowhere" in capsys.readouterr().err


def test_bad_branch_settings_are_config_errors(dataset: Path) -> None:
    with pytest.raises(ConfigError):
        branch_scenarios(dataset, at_turn=0, variants=1, seed=0)
    with pytest.raises(ConfigError):
        branch_scenarios(dataset, at_turn=4, variants=0, seed=0)
    with pytest.raises(ConfigError):  # no agent reply within the first turn
        branch_scenarios(dataset, at_turn=1, variants=1, seed=0)
    assert (dataset / DATASET_FILE).is_file()
