"""Runs over external servers: a crashing server, a pool of pre-started processes, a state file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec
import pytest

from schemas import ErrorEvent, TerminationReason, ToolCall, ToolResult
from simulator.dialogue.brains import AGENTS, register_agent
from simulator.dialogue.roles import AgentTurn
from simulator.dialogue.runner import DialogueConfig, run_dialogue
from simulator.external.connect import ExternalRun
from simulator.external.execute import execute_external
from simulator.external.spec import ExternalSpec
from simulator.run.config import RunConfig
from simulator.run.dataset import iter_records
from simulator.run.plan import prepare_run
from tests.simulator.external._scenarios import plan, scenario_over
from tests.simulator.external.conftest import notes_command

pytestmark = pytest.mark.anyio

LOOKUP = plan(
    "You want to read your travel note.",
    "Please show me note 3.",
    ("get_note", {"note_id": 3}, ["body"]),
)
ADD = plan(
    "You want to write down a reminder.",
    "Please add a note titled Dentist saying Tuesday at nine.",
    ("add_note", {"title": "Dentist", "body": "Tuesday at nine"}, ["note_id"]),
    ("list_notes", {}, []),
)
BROWSE = plan(
    "You want to read two of your notes.",
    "Please show me note 1, then note 2, then note 3.",
    ("get_note", {"note_id": 1}, ["body"]),
    ("get_note", {"note_id": 2}, ["body"]),
    ("get_note", {"note_id": 3}, ["body"]),
)


def _titles(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [r[0] for r in conn.execute("SELECT title FROM notes ORDER BY note_id")]
    finally:
        conn.close()


@pytest.mark.slow
async def test_a_server_that_crashes_mid_dialogue_is_a_tool_failure_and_the_run_goes_on(
    tmp_path: Path, notes_db: Path
) -> None:
    healthy = ExternalSpec(command=notes_command(), state_file=notes_db)
    env, browse = await scenario_over(healthy, [BROWSE], tmp_path / "a", scenario_id="notes-1-00000")
    _, lookup = await scenario_over(healthy, [LOOKUP], tmp_path / "b", scenario_id="notes-1-00001")
    # The third call of any one process kills it: mid-dialogue for the browsing scenario only.
    crashing = ExternalSpec(command=notes_command("--crash-after", "2"), state_file=notes_db)
    config = RunConfig(dialogues=2, seed=1, out_dir=tmp_path / "out", concurrency=1, external=crashing.describe())
    prepared = prepare_run(config, planner=lambda _c: ([env], [browse, lookup]))
    summary = await execute_external(prepared, crashing, progress=False)

    records = {r.id: r for _, r in iter_records(tmp_path / "out")}
    assert summary.generated == 2 and summary.failed == 1
    crashed = records["notes-1-00000"]
    assert crashed.termination is TerminationReason.TOOL_FAILURE
    results = [e for e in crashed.events if isinstance(e, ToolResult)]
    assert [r.is_error for r in results] == [False, False, True]
    assert results[-1].error_code == "server_failure"
    errors = [e for e in crashed.events if isinstance(e, ErrorEvent)]
    assert errors and errors[0].where == "tool_failure"
    assert not crashed.success and not any(o.success for o in crashed.outcomes)
    # The next dialogue got a fresh process and ran to its end.
    fine = records["notes-1-00001"]
    assert fine.termination is TerminationReason.USER_DONE and fine.success, fine.outcomes


@pytest.mark.slow
async def test_a_state_file_is_copied_per_dialogue_and_checked_by_a_replay(tmp_path: Path, notes_db: Path) -> None:
    spec = ExternalSpec(command=notes_command(), state_file=notes_db, keep_state=True)
    env, adding = await scenario_over(spec, [ADD], tmp_path / "a", scenario_id="notes-1-00000")
    task = adding.tasks[0]
    assert [c.path for c in task.expected.state] == ["notes.sqlite"]
    assert task.expected.calls and task.expected.calls[0].tool == "list_notes"
    async with ExternalRun(spec, env, root=tmp_path / "states") as external:
        record = await run_dialogue(adding, env, DialogueConfig(), connect=external.connector())
    assert record.termination is TerminationReason.USER_DONE, record.error
    assert record.success, record.outcomes
    assert [e.tool for e in record.events if isinstance(e, ToolCall)] == ["add_note", "list_notes"]
    # The dialogue wrote to its own copy; the template is as it was.
    assert _titles(tmp_path / "states" / adding.id / "notes.sqlite")[-1] == "Dentist"
    assert _titles(notes_db) == ["Groceries", "Ideas", "Travel"]


@pytest.mark.slow
async def test_a_state_file_is_shown_as_a_display_path_both_ways(tmp_path: Path, notes_db: Path) -> None:
    spec = ExternalSpec(command=notes_command("--path-tool"), state_file=notes_db)
    shown = "/workspace/notes.sqlite"
    assert spec.shown_state == shown
    counting = plan(
        "You want to know how many notes your database holds.",
        f"Please count the notes in {shown}.",
        ("count_notes", {"database": shown}, ["count"]),
    )
    env, scenario = await scenario_over(spec, [counting], tmp_path / "a", scenario_id="notes-1-00001")
    assert shown in env.description
    async with ExternalRun(spec, env, root=tmp_path / "states") as external:
        record = await run_dialogue(scenario, env, DialogueConfig(), connect=external.connector())
    assert record.termination is TerminationReason.USER_DONE, record.error
    assert record.success, record.outcomes
    (call,) = [e for e in record.events if isinstance(e, ToolCall)]
    (result,) = [e for e in record.events if isinstance(e, ToolResult)]
    # The display path went in as the real one (the server accepted it) and came back out as itself.
    assert call.arguments == {"database": shown} and not result.is_error
    assert result.structured is not None and result.structured["summary"] == f"{shown} holds 3 notes"
    text = msgspec.json.encode(record).decode()
    assert str(tmp_path) not in text and "{state}" not in text


class _Silent:
    """Claims the note is saved (with the id it would get) and never calls a tool."""

    brain = "silent"

    async def respond(self, text: str, acts: object) -> AgentTurn:
        return AgentTurn(text="Done, your note 4 is saved.")

    async def aclose(self) -> None:
        pass


def _silent_builder(_argument: str) -> object:
    async def factory(_ctx: object) -> _Silent:
        return _Silent()

    return factory


if "silent-test" not in AGENTS:
    register_agent("silent-test", "tests.simulator.external.test_runs:_silent_builder")


@pytest.mark.slow
async def test_a_silent_agent_fails_what_a_replay_checks(tmp_path: Path, notes_db: Path) -> None:
    spec = ExternalSpec(command=notes_command(), state_file=notes_db)
    env, adding = await scenario_over(spec, [ADD], tmp_path / "a", scenario_id="notes-1-00000")
    assert adding.tasks[0].expected.values[0].value == 4
    async with ExternalRun(spec, env) as external:
        record = await run_dialogue(adding, env, DialogueConfig(agent="silent-test"), connect=external.connector())
    assert not [e for e in record.events if isinstance(e, ToolCall)]
    outcome = record.outcomes[0]
    assert not outcome.success and not record.success
    assert any(f.startswith("state: notes.sqlite") for f in outcome.failed_assertions), outcome
    assert any("list_notes" in f for f in outcome.failed_assertions), outcome
    assert outcome.missing_values == ["t0.s0:note_id=4"]  # said, but no tool result held it


@pytest.mark.slow
async def test_a_pool_reuses_one_process_and_restores_its_state(tmp_path: Path, notes_db: Path) -> None:
    spec = ExternalSpec(command=notes_command(), state_file=notes_db, pool=1)
    env, first = await scenario_over(spec, [ADD], tmp_path / "a", scenario_id="notes-1-00000")
    second = msgspec.structs.replace(first, id="notes-1-00001")
    async with ExternalRun(spec, env) as external:
        records = [
            await run_dialogue(scenario, env, DialogueConfig(), connect=external.connector())
            for scenario in (first, second)
        ]
        assert external.pool is not None
        started = external.pool._count
    for record in records:
        assert record.termination is TerminationReason.USER_DONE and record.success, record.outcomes
    # Both dialogues (and both replays) were served by the one pre-started process, restored in between:
    # the second dialogue's note got the same id as the first's.
    assert started == 1
    ids = [
        e.structured["note_id"] for r in records for e in r.events if isinstance(e, ToolResult) and e.tool == "add_note"
    ]
    assert ids == [4, 4]


@pytest.mark.slow
async def test_a_lookup_asked_again_in_a_later_task_is_made_again(tmp_path: Path, notes_db: Path) -> None:
    """An external server's values count only after a result of the task's own part
    (``simulator.external.verify``), and its state may change by more than the agent's
    writes: the offline agent makes each task's lookups again there, even the same lookup,
    with nothing written in between, by a tool that says it is read-only and closed-world.
    An agent that answered the second task from the first one's result fails that task."""
    spec = ExternalSpec(command=notes_command(), state_file=notes_db)
    env, twice = await scenario_over(spec, [LOOKUP, LOOKUP], tmp_path / "a", scenario_id="notes-1-00000")
    assert len(twice.tasks) == 2
    async with ExternalRun(spec, env) as external:
        record = await run_dialogue(twice, env, DialogueConfig(), connect=external.connector())
    assert record.termination is TerminationReason.USER_DONE, record.error
    assert [(e.tool, e.arguments) for e in record.events if isinstance(e, ToolCall)] == [
        ("get_note", {"note_id": 3}),
        ("get_note", {"note_id": 3}),
    ]
    assert record.success, record.outcomes
