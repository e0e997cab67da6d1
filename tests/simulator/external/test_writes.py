"""A write over a server with no state to compare counts only when made with the task's arguments.

The notes server is given its database file in the command (no ``--state-file``): every
dialogue and replay writes to that one file, and there is no state template to compare, so
what the dialogue's calls were is all a verification can go by.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import mcp
import mcp_types as types
import pytest

from schemas import CheckKind, ToolCall, Verdict
from simulator.dialogue.brains import AGENTS, register_agent
from simulator.dialogue.roles import AgentContext, AgentTurn
from simulator.dialogue.runner import DialogueConfig, run_dialogue
from simulator.external.connect import ExternalRun
from simulator.external.planner import is_read_tool
from simulator.external.spec import ExternalSpec
from tests.simulator.external._scenarios import plan, scenario_over
from tests.simulator.external.conftest import NOTES_SERVER

pytestmark = pytest.mark.anyio

#: A note to add; only the write itself is planned (no read to re-run, nothing to report).
ADD = plan(
    "You want to write down a reminder.",
    "Please add a note titled Dentist saying Tuesday at nine.",
    ("add_note", {"title": "Dentist", "body": "Tuesday at nine"}, []),
)


def _shared_notes(db: Path) -> str:
    """The notes server on one database file named in the command: no state template, nothing to compare."""
    return " ".join(shlex.quote(w) for w in [sys.executable, str(NOTES_SERVER), str(db)])


_GUESSES: dict[str, Any] = {"boolean": True, "integer": 1, "number": 1, "string": "x"}


class _Guesser:
    """Calls every write tool once with arguments guessed from their types, then says it is done."""

    brain = "guesser"

    def __init__(self, client: mcp.Client, tools: list[types.Tool]) -> None:
        self.client = client
        self.writes = [t for t in tools if not is_read_tool(t)]

    async def respond(self, text: str, acts: object) -> AgentTurn:
        for tool in self.writes:
            props: dict[str, Any] = (tool.input_schema or {}).get("properties", {})
            await self.client.call_tool(tool.name, {n: _GUESSES.get(p.get("type"), "x") for n, p in props.items()})
        self.writes = []
        return AgentTurn(text="Done, all taken care of.")

    async def aclose(self) -> None:
        pass


def _guesser_builder(_argument: str) -> object:
    async def factory(ctx: AgentContext) -> _Guesser:
        return _Guesser(ctx.client, ctx.tools)

    return factory


if "guesser-test" not in AGENTS:
    register_agent("guesser-test", "tests.simulator.external.test_writes:_guesser_builder")


@pytest.mark.slow
async def test_a_write_guessed_with_other_arguments_fails_and_the_honest_one_passes(
    tmp_path: Path, notes_db: Path
) -> None:
    """Before, any successful call of the step's tool passed the write: the guesser, which
    added a note titled "x", was scored as having added the Dentist note."""
    spec = ExternalSpec(command=_shared_notes(notes_db))
    env, scenario = await scenario_over(spec, [ADD], tmp_path / "a", scenario_id="notes-1-00000")
    (task,) = scenario.tasks
    assert not task.expected.calls and not task.expected.state and not task.expected.values
    async with ExternalRun(spec, env) as external:
        honest = await run_dialogue(scenario, env, DialogueConfig(), connect=external.connector())
        guessed = await run_dialogue(scenario, env, DialogueConfig(agent="guesser-test"), connect=external.connector())

    assert [(e.tool, e.arguments) for e in honest.events if isinstance(e, ToolCall)] == [
        ("add_note", {"title": "Dentist", "body": "Tuesday at nine"})
    ]
    assert honest.success, honest.outcomes
    assert [(e.tool, e.arguments) for e in guessed.events if isinstance(e, ToolCall)] == [
        ("add_note", {"title": "x", "body": "x"})
    ]
    (outcome,) = guessed.outcomes
    assert not outcome.success
    (write,) = [c for c in outcome.checks if c.kind is CheckKind.CALL]
    assert write.verdict is Verdict.FAIL and "title='x'" in write.detail, write
