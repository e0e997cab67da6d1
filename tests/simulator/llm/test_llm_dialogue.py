"""LLM brains end to end: both official SDKs against a loopback server that speaks their protocol.

A small scripted "model" answers every request: as the user it returns the structured
``{user_message, is_task_complete}`` reply, as the agent it calls a tool of the
dialogue's MCP server and then answers in words. The dialogue really runs: tool calls go
through MCP, results are fed back to the model, usage and cost are accounted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from schemas import DialogueRecord, Environment, ErrorEvent, ProviderCall, TerminationReason, ToolCall, ToolResult
from simulator.dialogue.runner import DialogueConfig, run_dialogue
from simulator.llm import LLMSetup, use_setup
from simulator.offline.scenarios import build_scenario
from simulator.providers import parse_model, settings_from_env
from simulator.providers.loopback import Received, Reply, anthropic_message, openai_completion, serve_loopback
from tests.conftest import shop_environment

KEY = "sk-test-secret-key-0123456789"


class FakeModel:
    """Plays the user and the agent for both wire protocols, and counts what it was told."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.user_turns = 0
        self.tool_results: list[str] = []
        self.tokens = {"input": 0, "output": 0}
        self.verdict = "valid"

    def __call__(self, request: Received) -> Reply:
        body = request.json()
        self.tokens["input"] += 11
        self.tokens["output"] += 7
        if self._structured_name(body) == "judgment":
            verdict = {"judgment": self.verdict, "reasoning": "the assistant never confirmed the change"}
            return Reply(body=self._structured(body, verdict))
        if self._is_user_request(body):
            self.user_turns += 1
            # The user model's own earlier replies are the assistant messages of its conversation.
            done = any(m["role"] == "assistant" for m in body["messages"])
            reply = {
                "user_message": "Thanks, that's all I needed." if done else "Hi, can you look up customer 1 for me?",
                "is_task_complete": done,
            }
            return Reply(body=self._structured(body, reply))
        last = body["messages"][-1]
        result = self._tool_result(last)
        if result is None and "that's all" in json.dumps(last):
            return Reply(body=self._text("You're welcome, goodbye!"))
        if result is None:
            tool = "get_customer" if "get_customer" in self._tool_names(body) else self._tool_names(body)[0]
            return Reply(body=self._tool_call(tool, {"customer_id": 1}))
        self.tool_results.append(result)
        return Reply(body=self._text(f"Here is what I found: {result}"))

    # -- protocol details ---------------------------------------------------------------
    def _structured_name(self, body: dict[str, Any]) -> str | None:
        if self.provider == "openai":
            name = body.get("response_format", {}).get("json_schema", {}).get("name")
            return str(name) if name else None
        choice = body.get("tool_choice", {})
        return str(choice["name"]) if choice.get("type") == "tool" else None

    def _is_user_request(self, body: dict[str, Any]) -> bool:
        if self.provider == "openai":
            return "response_format" in body
        return body.get("tool_choice", {}).get("type") == "tool"

    def _tool_names(self, body: dict[str, Any]) -> list[str]:
        if self.provider == "openai":
            return [t["function"]["name"] for t in body.get("tools", [])]
        return [t["name"] for t in body.get("tools", [])]

    def _tool_result(self, message: dict[str, Any]) -> str | None:
        if self.provider == "openai":
            return str(message["content"]) if message["role"] == "tool" else None
        content = message.get("content")
        if isinstance(content, list):
            for block in content:
                if block.get("type") == "tool_result":
                    inner = block["content"]
                    return inner if isinstance(inner, str) else "".join(b.get("text", "") for b in inner)
        return None

    def _structured(self, body: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
        if self.provider == "openai":
            return openai_completion(json.dumps(reply), prompt_tokens=11, completion_tokens=7)
        name = body["tool_choice"]["name"]
        return anthropic_message(tool_calls=[("toolu_user", name, reply)], input_tokens=11, output_tokens=7)

    def _tool_call(self, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        if self.provider == "openai":
            return openai_completion(tool_calls=[("call_1", tool, args)], prompt_tokens=11, completion_tokens=7)
        return anthropic_message(tool_calls=[("toolu_1", tool, args)], input_tokens=11, output_tokens=7)

    def _text(self, text: str) -> dict[str, Any]:
        if self.provider == "openai":
            return openai_completion(text, prompt_tokens=11, completion_tokens=7)
        return anthropic_message(text, input_tokens=11, output_tokens=7)


async def _served(fake: FakeModel) -> Any:
    async def handler(request: Received) -> Reply:
        return fake(request)

    return serve_loopback(handler)


@pytest.mark.anyio
@pytest.mark.parametrize("provider", ["anthropic", "openai"])
async def test_a_full_llm_dialogue_runs_tools_through_mcp(provider: str, caplog: pytest.LogCaptureFixture) -> None:
    env: Environment = shop_environment()
    scenario = build_scenario(env, index=0, seed=1)
    fake = FakeModel(provider)
    model = f"{provider}:test-model"
    async with await _served(fake) as server:
        url = server.openai_base_url if provider == "openai" else server.base_url
        spec = parse_model(model)
        settings = settings_from_env(spec, {}, api_key=KEY, base_url=url)
        setup = LLMSetup(settings={str(spec): settings})
        with use_setup(setup):
            record = await run_dialogue(scenario, env, DialogueConfig(agent=model, user=model))
        await setup.pool.aclose()

    assert record.termination is TerminationReason.USER_DONE, record.error
    assert record.brains["agent"] == f"llm:{model}" and record.brains["user"] == f"llm:{model}"
    calls = [e for e in record.events if isinstance(e, ToolCall)]
    results = [e for e in record.events if isinstance(e, ToolResult)]
    assert [c.tool for c in calls] == ["get_customer"]
    assert not results[0].is_error and "Ada Lovelace" in results[0].text
    # The tool result reached the model verbatim.
    assert fake.tool_results == [results[0].text]
    # Every request was accounted: one ProviderCall event each, tokens as the server reported.
    provider_calls = [e for e in record.events if isinstance(e, ProviderCall)]
    # user, agent (tool call), agent (answer), user (done), agent (goodbye)
    assert len(provider_calls) == server.hits == 5
    assert sum(e.input_tokens for e in provider_calls) == fake.tokens["input"]
    assert sum(e.output_tokens for e in provider_calls) == fake.tokens["output"]
    assert {e.role for e in provider_calls} == {"user", "agent"}
    # The key authenticated every request and appears nowhere else.
    for request in server.requests:
        assert KEY in (request.headers.get("authorization", "") + request.headers.get("x-api-key", ""))
    assert KEY.encode() not in msgspec.json.encode(record)
    assert all(KEY not in r.getMessage() for r in caplog.records)


@pytest.mark.anyio
async def test_generate_command_runs_against_a_compatible_server(tmp_path: Path) -> None:
    fake = FakeModel("openai")
    out = tmp_path / "data"
    async with await _served(fake) as server:
        result = await anyio.run_process(
            [
                sys.executable,
                "-m",
                "simulator",
                "generate",
                "--model",
                "openai:Qwen/Qwen3-8B",
                "--base-url",
                server.openai_base_url,
                "--domain",
                "retail",
                "--dialogues",
                "2",
                "--concurrency",
                "1",
                "--seed",
                "4",
                "--out",
                str(out),
                "--no-progress",
            ],
            check=False,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OPENAI_API_KEY": KEY},
        )
    assert result.returncode == 0, result.stderr.decode()
    lines = (out / "dialogues.jsonl").read_bytes().splitlines()
    records = [msgspec.json.decode(line, type=DialogueRecord) for line in lines]
    assert len(records) == 2
    for record in records:
        assert record.termination is TerminationReason.USER_DONE
        assert any(isinstance(e, ToolResult) for e in record.events)
        calls = [e for e in record.events if isinstance(e, ProviderCall)]
        assert record.usage.requests == len(calls) > 0
        assert record.usage.input_tokens == 11 * len(calls)
    assert KEY.encode() not in (out / "dialogues.jsonl").read_bytes()
    assert KEY not in result.stderr.decode() + result.stdout.decode()


@pytest.mark.anyio
@pytest.mark.parametrize("verdict", ["valid", "invalid"])
async def test_the_rubric_judge_decides_tasks_that_pass_the_database_checks(verdict: str) -> None:
    env = shop_environment()
    scenario = build_scenario(env, index=0, seed=1)
    fake = FakeModel("openai")
    fake.verdict = verdict
    model = "openai:judge-model"
    async with await _served(fake) as server:
        spec = parse_model(model)
        setup = LLMSetup(
            settings={str(spec): settings_from_env(spec, {}, api_key=KEY, base_url=server.openai_base_url)}
        )
        with use_setup(setup):
            record = await run_dialogue(scenario, env, DialogueConfig(judge=model))
        await setup.pool.aclose()
    judged = [json.loads(r.body)["messages"][0]["content"] for r in server.requests]
    assert len(judged) == len(scenario.tasks)  # one verdict per task
    assert scenario.tasks[0].goal in judged[0]  # the judge sees the hidden goal and the transcript
    assert all(o.judgment == verdict for o in record.outcomes)
    assert all(o.reasoning for o in record.outcomes)
    # The offline dialogue passes its database checks; the verdict decides the rest.
    assert all(o.success is (verdict == "valid") for o in record.outcomes)
    assert record.success is (verdict == "valid")


@pytest.mark.anyio
async def test_eval_takes_a_model_as_the_agent_under_test(tmp_path: Path) -> None:
    fake = FakeModel("openai")
    out = tmp_path / "eval"
    async with await _served(fake) as server:
        result = await anyio.run_process(
            [
                sys.executable,
                "-m",
                "simulator",
                "eval",
                "--agent",
                "openai:agent-under-test",
                "--base-url",
                server.openai_base_url,
                "--scenarios",
                "retail",
                "--limit",
                "1",
                "--trials",
                "2",
                "--seed",
                "3",
                "--out",
                str(out),
                "--no-progress",
            ],
            check=False,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OPENAI_API_KEY": KEY},
        )
    assert result.returncode == 0, result.stderr.decode()
    records = [
        msgspec.json.decode(line, type=DialogueRecord)
        for path in sorted((out / "records").rglob("*.jsonl"))
        for line in path.read_bytes().splitlines()
    ]
    assert len(records) == 2  # one scenario, two trials
    for record in records:
        assert record.brains["agent"] == "llm:openai:agent-under-test"
        # The model's tool calls went through the dialogue's MCP server and were recorded there.
        assert [e.tool for e in record.events if isinstance(e, ToolCall)].count("get_customer") >= 1
        assert any(isinstance(e, ProviderCall) and e.role == "agent" for e in record.events)
    results = json.loads((out / "results.json").read_text())
    assert results  # scored, whatever the model achieved
    assert KEY not in result.stderr.decode() + result.stdout.decode()


@pytest.mark.anyio
async def test_a_model_that_keeps_failing_is_recorded_and_the_run_goes_on(tmp_path: Path) -> None:
    from simulator.providers.loopback import openai_error
    from simulator.run.config import RunConfig
    from simulator.run.execute import execute_run
    from simulator.run.plan import prepare_run

    async def broken(request: Received) -> Reply:
        return openai_error(500, "the model server is down")

    model = "openai:down-model"
    async with serve_loopback(broken) as server:
        spec = parse_model(model)
        settings = settings_from_env(spec, {}, api_key=KEY, base_url=server.openai_base_url, max_retries=1)
        setup = LLMSetup(settings={str(spec): settings})
        config = RunConfig(
            dialogues=2,
            seed=1,
            concurrency=2,
            domains=("retail",),
            dialogue=DialogueConfig(agent=model),
            out_dir=tmp_path / "data",
        )
        with use_setup(setup):
            summary = await execute_run(prepare_run(config), progress=False)
        await setup.pool.aclose()
    assert summary.generated == 2 and summary.failed == 2
    records = [
        msgspec.json.decode(line, type=DialogueRecord)
        for line in (tmp_path / "data" / "dialogues.jsonl").read_bytes().splitlines()
    ]
    for record in records:
        assert record.termination is TerminationReason.AGENT_FAILURE
        errors = [e for e in record.events if isinstance(e, ErrorEvent)]
        assert [e.error_type for e in errors] == ["ProviderUnavailable"]
    assert server.hits == 2 * 2  # each dialogue's agent: one attempt and one retry, then it gave up


class _InventingModel(FakeModel):
    """Calls a tool the server does not have first, then carries on as FakeModel."""

    def __init__(self, provider: str) -> None:
        super().__init__(provider)
        self.invented = False
        self.told: list[str] = []

    def __call__(self, request: Received) -> Reply:
        body = request.json()
        if not self._is_user_request(body) and not self.invented:
            self.invented = True
            return Reply(body=self._tool_call("teleport_customer", {"customer_id": 1}))
        result = self._tool_result(body["messages"][-1]) if body.get("messages") else None
        if result is not None and not self.told:
            self.told = [result]
            return Reply(body=self._tool_call("get_customer", {"customer_id": 1}))
        return super().__call__(request)


@pytest.mark.anyio
@pytest.mark.parametrize("provider", ["anthropic", "openai"])
async def test_a_tool_the_server_does_not_have_is_told_to_the_model_not_counted(provider: str) -> None:
    env: Environment = shop_environment()
    scenario = build_scenario(env, index=0, seed=1)
    fake = _InventingModel(provider)
    model = f"{provider}:test-model"
    async with await _served(fake) as server:
        url = server.openai_base_url if provider == "openai" else server.base_url
        spec = parse_model(model)
        setup = LLMSetup(settings={str(spec): settings_from_env(spec, {}, api_key=KEY, base_url=url)})
        with use_setup(setup):
            record = await run_dialogue(scenario, env, DialogueConfig(agent=model, user=model))
        await setup.pool.aclose()
    # The model heard that the tool does not exist, and the dialogue went on.
    assert fake.told and "teleport_customer" in fake.told[0]
    assert record.termination is TerminationReason.USER_DONE, record.error
    # Recorded as a protocol error, not as a call of the agent's.
    protocol = [e for e in record.events if isinstance(e, ErrorEvent) and e.where == "tools/call"]
    assert [e.error_type for e in protocol] == ["unknown_tool"]
    assert [e.tool for e in record.events if isinstance(e, ToolCall)] == ["get_customer"]
    assert record.metrics.tool_calls == 1
