"""A tool-calling round trip through each official SDK: what the server received, what came back."""

from __future__ import annotations

import msgspec
import pytest

from simulator.providers import (
    ChatMessage,
    ChatToolCall,
    ProviderSettings,
    Request,
    Secret,
    StopReason,
    ToolDef,
    complete_structured,
    open_client,
)
from simulator.providers.loopback import Reply, Script, openai_completion, openai_error, serve_loopback
from tests.simulator.providers.conftest import ANTHROPIC, CANARY_KEY, OPENAI, client_for

pytestmark = pytest.mark.anyio

GET_ORDER = ToolDef(
    name="get_order",
    description="Look an order up by id.",
    parameters={
        "type": "object",
        "properties": {"order_id": {"type": "integer"}},
        "required": ["order_id"],
    },
)


def _history(first_reply_calls: list[ChatToolCall]) -> list[ChatMessage]:
    return [
        ChatMessage.system("You are a shop assistant."),
        ChatMessage.user("Where is order 3?"),
        ChatMessage.assistant("Let me look.", first_reply_calls),
        ChatMessage.tool("call_1", '{"order_id": 3, "status": "shipped"}'),
        ChatMessage.tool("call_2", "order 99: not found", is_error=True),
    ]


async def test_anthropic_tool_round_trip() -> None:
    script = Script(
        ANTHROPIC.ok(
            "Let me look.",
            tool_calls=[("call_1", "get_order", {"order_id": 3}), ("call_2", "get_order", {"order_id": 99})],
            input_tokens=31,
            output_tokens=12,
        ),
        ANTHROPIC.ok("Order 3 has shipped; order 99 does not exist.", input_tokens=80, output_tokens=14),
    )
    async with serve_loopback(script) as server, client_for(ANTHROPIC, server) as client:
        first = await client.complete(
            Request(messages=_history([])[:2], tools=[GET_ORDER], max_tokens=500, stop=["END"])
        )
        assert first.stop_reason is StopReason.TOOL_CALLS
        assert first.text == "Let me look."
        assert first.tool_calls == [
            ChatToolCall(id="call_1", name="get_order", arguments={"order_id": 3}),
            ChatToolCall(id="call_2", name="get_order", arguments={"order_id": 99}),
        ]
        assert (first.usage.input_tokens, first.usage.output_tokens) == (31, 12)
        second = await client.complete(Request(messages=_history(first.tool_calls), tools=[GET_ORDER]))
        assert second.stop_reason is StopReason.END
        assert second.text == "Order 3 has shipped; order 99 does not exist."
        assert second.tool_calls == []

    first_req, second_req = (r.json() for r in server.requests)
    assert all(r.path == "/v1/messages" and r.method == "POST" for r in server.requests)
    assert server.requests[0].headers["authorization"] == f"Bearer {CANARY_KEY}"
    assert first_req["model"] == "claude-sonnet-5"
    assert first_req["max_tokens"] == 500
    assert first_req["stop_sequences"] == ["END"]
    assert first_req["system"] == "You are a shop assistant."
    assert first_req["tools"] == [
        {"name": "get_order", "description": "Look an order up by id.", "input_schema": GET_ORDER.parameters}
    ]
    assert "tool_choice" not in first_req
    assert "temperature" not in first_req
    assert second_req["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Where is order 3?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "call_1", "name": "get_order", "input": {"order_id": 3}},
                {"type": "tool_use", "id": "call_2", "name": "get_order", "input": {"order_id": 99}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": '{"order_id": 3, "status": "shipped"}'},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "order 99: not found", "is_error": True},
            ],
        },
    ]
    assert second_req["max_tokens"] == 4096  # the Messages API requires one


async def test_openai_tool_round_trip() -> None:
    script = Script(
        OPENAI.ok(
            "Let me look.",
            tool_calls=[("call_1", "get_order", {"order_id": 3}), ("call_2", "get_order", {"order_id": 99})],
            input_tokens=31,
            output_tokens=12,
        ),
        OPENAI.ok("Order 3 has shipped; order 99 does not exist.", input_tokens=80, output_tokens=14),
    )
    async with serve_loopback(script) as server, client_for(OPENAI, server) as client:
        first = await client.complete(
            Request(messages=_history([])[:2], tools=[GET_ORDER], max_tokens=500, temperature=0.3, seed=5)
        )
        assert first.stop_reason is StopReason.TOOL_CALLS
        assert first.tool_calls == [
            ChatToolCall(id="call_1", name="get_order", arguments={"order_id": 3}),
            ChatToolCall(id="call_2", name="get_order", arguments={"order_id": 99}),
        ]
        second = await client.complete(Request(messages=_history(first.tool_calls), tools=[GET_ORDER]))
        assert second.text == "Order 3 has shipped; order 99 does not exist."
        assert second.stop_reason is StopReason.END

    first_req, second_req = (r.json() for r in server.requests)
    assert all(r.path == "/v1/chat/completions" for r in server.requests)
    assert server.requests[0].headers["authorization"] == f"Bearer {CANARY_KEY}"
    assert first_req["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_order",
                "description": "Look an order up by id.",
                "parameters": GET_ORDER.parameters,
            },
        }
    ]
    # A compatible server (not api.openai.com) gets max_tokens, not max_completion_tokens.
    assert (first_req["max_tokens"], first_req["temperature"], first_req["seed"]) == (500, 0.3, 5)
    assert second_req["messages"] == [
        {"role": "system", "content": "You are a shop assistant."},
        {"role": "user", "content": "Where is order 3?"},
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_order", "arguments": '{"order_id": 3}'}},
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_order", "arguments": '{"order_id": 99}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"order_id": 3, "status": "shipped"}'},
        {"role": "tool", "tool_call_id": "call_2", "content": "order 99: not found"},
    ]


async def test_openai_arguments_that_are_not_json_reach_the_caller_as_invalid() -> None:
    body = openai_completion(tool_calls=[("c1", "get_order", '{"order_id": 3'), ("c2", "get_order", "[1]")])
    async with serve_loopback(Script(Reply(body=body))) as server, client_for(OPENAI, server) as client:
        response = await client.complete(Request(messages=[ChatMessage.user("hi")], tools=[GET_ORDER]))
    assert [(c.arguments, c.invalid_arguments) for c in response.tool_calls] == [
        ({}, '{"order_id": 3'),
        ({}, "[1]"),
    ]


class Verdict(msgspec.Struct, forbid_unknown_fields=True):
    judgment: str
    reasoning: str


class LooseVerdict(msgspec.Struct):
    judgment: str
    reasoning: str = ""


async def test_anthropic_structured_output_is_a_forced_tool_call() -> None:
    reply = ANTHROPIC.ok(tool_calls=[("toolu_1", "Verdict", {"judgment": "valid", "reasoning": "all checks pass"})])
    async with serve_loopback(Script(reply)) as server, client_for(ANTHROPIC, server) as client:
        verdict = await complete_structured(client, Request(messages=[ChatMessage.user("Judge this.")]), Verdict)
    assert verdict == Verdict(judgment="valid", reasoning="all checks pass")
    body = server.requests[0].json()
    assert body["tool_choice"] == {"type": "tool", "name": "Verdict"}
    schema = body["tools"][-1]["input_schema"]
    assert body["tools"][-1]["name"] == "Verdict"
    assert schema["type"] == "object" and "$ref" not in schema and "$schema" not in schema
    assert set(schema["required"]) == {"judgment", "reasoning"}


async def test_openai_structured_output_uses_strict_json_schema_when_the_schema_allows() -> None:
    script = Script(
        OPENAI.ok('{"judgment": "valid", "reasoning": "fine"}'),
        OPENAI.ok('{"judgment": "invalid"}'),
    )
    async with serve_loopback(script) as server, client_for(OPENAI, server) as client:
        strict = await complete_structured(client, Request(messages=[ChatMessage.user("Judge.")]), Verdict)
        loose = await complete_structured(client, Request(messages=[ChatMessage.user("Judge.")]), LooseVerdict)
    assert strict == Verdict(judgment="valid", reasoning="fine")
    assert loose == LooseVerdict(judgment="invalid")
    strict_format, loose_format = (r.json()["response_format"] for r in server.requests)
    assert strict_format["type"] == "json_schema"
    assert strict_format["json_schema"]["name"] == "Verdict"
    assert strict_format["json_schema"]["strict"] is True
    assert strict_format["json_schema"]["schema"]["additionalProperties"] is False
    assert loose_format["json_schema"]["strict"] is False


async def test_openai_server_without_json_schema_falls_back_and_remembers() -> None:
    script = Script(
        openai_error(400, "response_format json_schema is not supported", "invalid_request_error"),
        OPENAI.ok('{"judgment": "valid", "reasoning": "ok"}'),
        OPENAI.ok('{"judgment": "invalid", "reasoning": "no"}'),
    )
    async with serve_loopback(script) as server, client_for(OPENAI, server) as client:
        for _ in range(2):
            await complete_structured(client, Request(messages=[ChatMessage.user("Judge.")]), Verdict)
    rejected, fallback, remembered = (r.json() for r in server.requests)
    assert rejected["response_format"]["type"] == "json_schema"
    for body in (fallback, remembered):
        assert body["response_format"] == {"type": "json_object"}
        assert body["messages"][0]["role"] == "system"
        assert '"judgment"' in body["messages"][0]["content"]  # the schema travels in the prompt


async def test_a_deprecated_anthropic_model_is_said_once_not_warned_per_call(caplog: pytest.LogCaptureFixture) -> None:
    # The SDK raises a DeprecationWarning per call (an error under this suite's -W error).
    # Which models are deprecated changes with SDK releases: take one from the installed SDK's table.
    from simulator.providers.anthropic import DEPRECATED_MODELS

    if not DEPRECATED_MODELS:
        pytest.skip("the installed anthropic SDK lists no deprecated model")
    model = sorted(DEPRECATED_MODELS)[0]
    script = Script(ANTHROPIC.ok("one"), ANTHROPIC.ok("two"))
    async with serve_loopback(script) as server:
        async with open_client(
            f"anthropic:{model}", ProviderSettings(api_key=Secret(CANARY_KEY), base_url=server.base_url)
        ) as client:
            for _ in range(2):
                await client.complete(Request(messages=[ChatMessage.user("hi")]))
    notes = [r for r in caplog.records if "deprecated" in r.getMessage()]
    assert len(notes) == 1 and notes[0].levelname == "WARNING"
