"""Model-written tasks and a model agent over ``mcp-server-git``, against a scripted loopback model.

The "model" speaks the Chat Completions protocol through the official SDK: as the task
generator it writes two tasks over the git tools it was shown (a branch to create, a
commit message to find); as the agent it calls the tools the user's words point to and
then answers with what they returned. Everything it writes is run for real on fresh
copies of a local repository.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest

from schemas import Mode, TerminationReason, ToolCall, ToolResult
from simulator.dialogue.runner import DialogueConfig
from simulator.external.execute import execute_external, plan_external
from simulator.external.spec import ExternalSpec
from simulator.external.tree import snapshot
from simulator.llm import LLMSetup, use_setup
from simulator.providers import parse_model, settings_from_env
from simulator.providers.loopback import Received, Reply, openai_completion, serve_loopback
from simulator.run.config import RunConfig
from simulator.run.dataset import iter_records
from simulator.run.plan import prepare_run
from tests.simulator.external.conftest import git_command

pytestmark = pytest.mark.anyio

KEY = "sk-test-secret-key-0123456789"
MODEL = "openai:loopback-model"
#: What dialogues show for the copies of the ``git_repo`` fixture (a directory named ``repo``).
REPO = "/workspace/repo"

TASKS = [
    {
        "goal": "You want a new branch called topic for your work, and to see it listed.",
        "difficulty": "easy",
        "sub_requests": [{"text": "Please create a branch called topic and list the local branches.", "calls": [0, 1]}],
        "calls": [
            {"tool": "git_create_branch", "arguments": {"repo_path": REPO, "branch_name": "topic"}},
            {"tool": "git_branch", "arguments": {"repo_path": REPO, "branch_type": "local"}},
        ],
        "rubric": [{"kind": "critical", "text": "the branch is created"}],
    },
    {
        "goal": "A task that cannot work: a tool that does not exist.",
        "sub_requests": [{"text": "Push it.", "calls": [0]}],
        "calls": [{"tool": "git_push", "arguments": {"repo_path": REPO}}],
    },
    {
        "goal": "You want to know the message of the latest commit.",
        "difficulty": "easy",
        "sub_requests": [{"text": "What does the commit history say about the latest commit?", "calls": [0]}],
        "calls": [{"tool": "git_log", "arguments": {"repo_path": REPO, "max_count": 1}, "report": ["Message"]}],
    },
]


class FakeModel:
    """The task generator and the agent, by what each request asks for."""

    def __init__(self, *, agent_uses_tools: bool = True) -> None:
        self.agent_uses_tools = agent_uses_tools
        self.prompts: list[str] = []
        self.repairs = 0

    def __call__(self, request: Received) -> Reply:
        body = request.json()
        name = body.get("response_format", {}).get("json_schema", {}).get("name")
        if name == "tasks":
            self.prompts.append(body["messages"][0]["content"])
            return Reply(body=openai_completion(json.dumps({"tasks": TASKS})))
        if name == "task":  # the repair of the impossible task: still impossible, so it is dropped
            self.repairs += 1
            return Reply(body=openai_completion(json.dumps(TASKS[1])))
        return Reply(body=self._agent(body))

    def _agent(self, body: dict[str, Any]) -> dict[str, Any]:
        messages = body["messages"]
        last = messages[-1]
        if last["role"] == "tool" or not self.agent_uses_tools:
            results = []
            for m in reversed(messages):
                if m["role"] != "tool":
                    break
                results.insert(0, str(m["content"]))
            text = "Here is what the tools said: " + " / ".join(results) if results else "All done for you!"
            return openai_completion(text)
        said = str(last["content"])
        match = re.search(r"branch called (\w+)", said)
        if match:
            calls = [
                ("c1", "git_create_branch", {"repo_path": REPO, "branch_name": match.group(1)}),
                ("c2", "git_branch", {"repo_path": REPO, "branch_type": "local"}),
            ]
        elif "commit" in said:
            calls = [("c1", "git_log", {"repo_path": REPO, "max_count": 1})]
        else:
            return openai_completion("You're welcome!")
        return openai_completion(tool_calls=calls)


@asynccontextmanager
async def _model(fake: FakeModel) -> AsyncIterator[LLMSetup]:
    async def handler(request: Received) -> Reply:
        return fake(request)

    async with serve_loopback(handler) as server:
        spec = parse_model(MODEL)
        setup = LLMSetup(
            settings={str(spec): settings_from_env(spec, {}, api_key=KEY, base_url=server.openai_base_url)}
        )
        with use_setup(setup):
            try:
                yield setup
            finally:
                await setup.pool.aclose()


async def _run(tmp_path: Path, repo: Path, fake: FakeModel, out: str, count: int) -> tuple[list[Any], Path]:
    spec = ExternalSpec(command=git_command(), state_dir=repo, keep_state=True)
    async with _model(fake):
        env, scenarios = await plan_external(spec, count=count, seed=2, mode=Mode.USER_ORIENTED, tasks_model=MODEL)
        config = RunConfig(
            dialogues=count,
            seed=2,  # both scenarios ask for three tasks or more: all three are tried
            out_dir=tmp_path / out,
            concurrency=2,
            dialogue=DialogueConfig(agent=MODEL),
            external=spec.describe(),
        )
        prepared = prepare_run(config, planner=lambda _c: ([env], scenarios))
        await execute_external(prepared, spec, progress=False, state_root=tmp_path / out / "state")
    return [r for _, r in iter_records(tmp_path / out)], tmp_path / out / "state"


@pytest.mark.slow
async def test_model_tasks_over_git_are_checked_and_an_agent_passes_them(tmp_path: Path, git_repo: Path) -> None:
    before = snapshot(git_repo)
    fake = FakeModel()
    records, states = await _run(tmp_path, git_repo, fake, "good", 2)

    # The generator saw the tools and what the read tools returned on the probe run.
    assert "git_create_branch (write)" in fake.prompts[0] and "git_log (read)" in fake.prompts[0]
    assert "Add the app" in fake.prompts[0]
    # It was told the display path to write, never the placeholder or a temporary path.
    assert f"write {REPO} wherever" in fake.prompts[0]
    assert "{state}" not in fake.prompts[0] and str(tmp_path) not in fake.prompts[0]
    # The impossible task was sent back once, then dropped; the other two were kept with their real outcome.
    assert fake.repairs == 2
    tasks = [t for r in records for t in r.scenario.tasks]
    branches = [t for t in tasks if t.chain[0].tool == "git_create_branch"]
    logs = [t for t in tasks if t.chain[0].tool == "git_log"]
    assert len(branches) == len(logs) == 2 and len(tasks) == 4
    assert {c.path for c in branches[0].expected.state} >= {".git/refs/heads/topic"}
    assert logs[0].expected.values[0].name == "message" and logs[0].expected.values[0].value == "Add the app"

    assert len(records) == 2
    for record in records:
        assert record.termination is TerminationReason.USER_DONE, record.error
        assert record.success, record.outcomes
        tools = [e.tool for e in record.events if isinstance(e, ToolCall)]
        assert tools[:2] == ["git_create_branch", "git_branch"]
        created = next(e for e in record.events if isinstance(e, ToolResult) and e.tool == "git_create_branch")
        # Had the two dialogues shared a repository, the second "topic" would already exist.
        assert not created.is_error and "Created branch 'topic'" in created.text
        kept = states / record.id / "state"
        assert (kept / ".git" / "refs" / "heads" / "topic").is_file()
        text = msgspec.json.encode(record).decode()
        assert "{state}" not in text and str(tmp_path) not in text
    assert snapshot(git_repo) == before


@pytest.mark.slow
async def test_an_agent_that_only_claims_the_work_fails(tmp_path: Path, git_repo: Path) -> None:
    records, _ = await _run(tmp_path, git_repo, FakeModel(agent_uses_tools=False), "silent", 1)
    assert len(records) == 1
    for record in records:
        assert not [e for e in record.events if isinstance(e, ToolCall)]
        branch, *log = record.outcomes
        assert not branch.success and any("refs/heads/topic" in f for f in branch.failed_assertions), branch
        for outcome in log:
            assert not outcome.success and outcome.missing_values == ["t1.s0:message='Add the app'"]
