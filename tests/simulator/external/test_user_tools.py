"""Tools on the user's side ("dual control", ``--user-server``) with a loopback LLM user.

The agent cannot change the user's phone; it asks the user to, and the LLM user does it
with its own tools. The user's calls are recorded as the user's (UserToolCall /
UserToolResult, not the agent's tool calls) and the phone's final state is checked like
the agent's: its read call re-run against a replay of the task's gold calls.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from schemas import Mode, Persona, Scenario, TerminationReason, ToolCall, UserToolCall, UserToolResult
from simulator.dialogue.runner import DialogueConfig, run_dialogue
from simulator.external.connect import ExternalRun
from simulator.external.execute import build_environment
from simulator.external.instance import list_all_tools, open_instance
from simulator.external.spec import ExternalSpec
from simulator.external.tasks import carry_out
from simulator.llm import LLMSetup, use_setup
from simulator.providers import parse_model, settings_from_env
from simulator.providers.loopback import Received, Reply, openai_completion, serve_loopback
from tests.simulator.external._scenarios import plan
from tests.simulator.external.conftest import notes_command

pytestmark = pytest.mark.anyio

KEY = "sk-test-secret-key-0123456789"
MODEL = "openai:loopback-model"
PHONE = " ".join(shlex.quote(w) for w in [sys.executable, str(Path(__file__).with_name("phone_server.py"))])

TASK = plan(
    "Your phone is in airplane mode and you want to read your notes.",
    "I can't reach my notes from my phone; please list them.",
    ("set_airplane_mode", {"on": False}, []),
    ("list_notes", {}, []),
    ("phone_status", {}, []),
)


class FakeModel:
    """The LLM user (with its phone tools) and the LLM agent (with the notes tools)."""

    def __init__(self, *, user_obeys: bool) -> None:
        self.user_obeys = user_obeys

    def __call__(self, request: Received) -> Reply:
        body = request.json()
        messages = body["messages"]
        tools = {t["function"]["name"] for t in body.get("tools", [])}
        if "set_airplane_mode" in tools:  # the user's tool step
            return Reply(body=self._user_tools(messages))
        if body.get("response_format"):  # the user's reply
            heard = " ".join(str(m["content"]) for m in messages if m["role"] == "user")
            done = "Groceries" in heard
            said = "Thanks, that's all." if done else "Hi, I can't see my notes. Can you list them?"
            if "airplane" in str(messages[-1]["content"]).lower() or messages[-1]["role"] == "tool":
                said = "I switched airplane mode off." if self.user_obeys else "I'd rather not touch my phone, bye."
                done = not self.user_obeys
            reply = {"user_message": said, "is_task_complete": done}
            return Reply(body=openai_completion(json.dumps(reply)))
        return Reply(body=self._agent(messages))

    def _user_tools(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        last = messages[-1]
        asked = last["role"] == "user" and "airplane" in str(last["content"]).lower()
        if asked and self.user_obeys:
            return openai_completion(tool_calls=[("u1", "set_airplane_mode", {"on": False})])
        if last["role"] == "tool" and '"airplane_mode": false' in str(last["content"]).replace("False", "false"):
            if not any(m["role"] == "assistant" and "phone_status" in json.dumps(m) for m in messages):
                return openai_completion(tool_calls=[("u2", "phone_status", {})])
        return openai_completion("(nothing to do on my side)")

    def _agent(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        last = messages[-1]
        if last["role"] == "tool":
            return openai_completion(f"Your notes: {last['content']}")
        said = str(last["content"]).lower()
        if "switched airplane mode off" in said:
            return openai_completion(tool_calls=[("a1", "list_notes", {})])
        if "thanks" in said:
            return openai_completion("Goodbye!")
        return openai_completion("Your phone seems offline: please turn airplane mode off, then tell me.")


@asynccontextmanager
async def _model(fake: FakeModel) -> AsyncIterator[None]:
    async def handler(request: Received) -> Reply:
        return fake(request)

    async with serve_loopback(handler) as server:
        spec = parse_model(MODEL)
        settings = settings_from_env(spec, {}, api_key=KEY, base_url=server.openai_base_url)
        setup = LLMSetup(settings={str(spec): settings})
        with use_setup(setup):
            try:
                yield
            finally:
                await setup.pool.aclose()


async def _scenario(spec: ExternalSpec, user: ExternalSpec, work: Path) -> tuple[Any, Scenario]:
    async with open_instance(spec, work / "a") as agent_side, open_instance(user, work / "u") as user_side:
        tools = await list_all_tools(agent_side.client, 30)
        user_tools = await list_all_tools(user_side.client, 30)
    env = build_environment(spec, tools, "notes", user_spec=user, user_tools=user_tools)
    by_name = {t.name: t for t in [*tools, *user_tools]}
    users = frozenset(t.name for t in user_tools)
    tasks = await carry_out(spec, [TASK], by_name, work / "carry", ignore=[], user_spec=user, user_tools=users)
    scenario = Scenario(id="notes-1-00000", environment_id=env.id, domain=env.domain, tasks=tasks,
                        persona=Persona(name="Ada"), mode=Mode.USER_ORIENTED, seed=1)  # fmt: skip
    return env, scenario


@pytest.mark.slow
@pytest.mark.parametrize("user_obeys", [True, False], ids=["user-obeys", "user-refuses"])
async def test_the_user_changes_its_own_phone_and_the_phone_is_checked(
    tmp_path: Path, notes_db: Path, user_obeys: bool
) -> None:
    spec = ExternalSpec(command=notes_command(), state_file=notes_db)
    user = ExternalSpec(command=PHONE)
    env, scenario = await _scenario(spec, user, tmp_path)
    assert env.server is not None
    assert {t["name"] for t in env.server.user_tools} == {"phone_status", "set_airplane_mode"}
    assert {c.tool for c in scenario.tasks[0].expected.calls} == {"list_notes", "phone_status"}
    async with _model(FakeModel(user_obeys=user_obeys)):
        async with ExternalRun(spec, env, user_spec=user) as external:
            record = await run_dialogue(
                scenario, env, DialogueConfig(agent=MODEL, user=MODEL), connect=external.connector()
            )
    agent_calls = [e.tool for e in record.events if isinstance(e, ToolCall)]
    user_calls = [e.tool for e in record.events if isinstance(e, UserToolCall)]
    assert "set_airplane_mode" not in agent_calls  # the agent has no such tool
    assert record.metrics.tool_calls == len(agent_calls)
    outcome = record.outcomes[0]
    if user_obeys:
        assert record.termination is TerminationReason.USER_DONE, record.error
        assert user_calls == ["set_airplane_mode", "phone_status"]
        results = [e for e in record.events if isinstance(e, UserToolResult)]
        assert results[0].structured == {"airplane_mode": False, "signal_bars": 4}
        assert agent_calls == ["list_notes"]
        assert outcome.success, outcome
    else:  # the phone was never switched: the user's side of the state says so
        assert user_calls == []
        assert not outcome.success
        assert any(f.startswith("phone_status re-run") for f in outcome.failed_assertions), outcome


@pytest.mark.slow
def test_generate_with_a_user_server_snapshots_both_tool_lists(tmp_path: Path, notes_db: Path) -> None:
    from simulator.cli import main

    out = tmp_path / "out"
    argv = ["generate", "--server", notes_command(), "--state-file", str(notes_db), "--user-server", PHONE,
            "--dialogues", "1", "--seed", "1", "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    (path,) = (out / "environments").glob("*.json")
    server = json.loads(path.read_text())["server"]
    assert {t["name"] for t in server["tools"]} == {"list_notes", "get_note", "add_note"}
    assert {t["name"] for t in server["user_tools"]} == {"phone_status", "set_airplane_mode"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["fingerprint"]["external"]["user_server"] == PHONE
