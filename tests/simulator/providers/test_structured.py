"""Structured replies are decoded with msgspec; a bad one is sent back once for repair."""

from __future__ import annotations

import msgspec
import pytest

from simulator.providers import (
    ChatMessage,
    Request,
    StructuredOutputError,
    UsageMeter,
    complete_structured,
    decode_structured,
    output_schema,
)
from simulator.providers.loopback import Reply, Script, serve_loopback
from tests.simulator.providers.conftest import ANTHROPIC, OPENAI, Protocol, client_for

pytestmark = pytest.mark.anyio


class UserTurn(msgspec.Struct, forbid_unknown_fields=True):
    user_message: str
    is_task_complete: bool


ASK = Request(messages=[ChatMessage.system("You are the user."), ChatMessage.user("The agent said: done.")])


def _structured_reply(proto: Protocol, payload: str) -> Reply:
    """The reply as each provider delivers a structured answer."""
    if proto is ANTHROPIC:
        return proto.ok(tool_calls=[("toolu_1", "UserTurn", msgspec.json.decode(payload))])
    return proto.ok(payload)


async def test_a_malformed_reply_is_repaired_once(proto: Protocol) -> None:
    bad = '{"user_message": "Thanks!", "is_task_complete": "yes"}'
    good = '{"user_message": "Thanks!", "is_task_complete": true}'
    meter = UsageMeter()
    async with serve_loopback(Script(_structured_reply(proto, bad), _structured_reply(proto, good))) as server:
        async with client_for(proto, server) as client:
            turn = await complete_structured(client.bind(meter=meter), ASK, UserTurn)
    assert turn == UserTurn(user_message="Thanks!", is_task_complete=True)
    assert server.hits == 2
    assert meter.totals.requests == 2  # the repair is a metered call like any other
    repair = server.requests[1].json()
    last = repair["messages"][-1]
    text = last["content"] if proto is OPENAI else last["content"][0]["text"]
    assert last["role"] == "user"
    assert "Expected `bool`, got `str` - at `$.is_task_complete`" in text
    assistant = repair["messages"][-2]
    echoed = assistant["content"] if proto is OPENAI else assistant["content"][0]["text"]
    assert msgspec.json.decode(echoed) == msgspec.json.decode(bad)
    # The repair asks for the same structured output again.
    if proto is OPENAI:
        assert repair["response_format"]["json_schema"]["name"] == "UserTurn"
    else:
        assert repair["tool_choice"] == {"type": "tool", "name": "UserTurn"}


async def test_a_reply_that_stays_malformed_fails_the_dialogue_clearly() -> None:
    script = Script(OPENAI.ok("Sure! I am done."), OPENAI.ok('{"user_message": "ok"}'))
    async with serve_loopback(script) as server, client_for(OPENAI, server) as client:
        with pytest.raises(StructuredOutputError) as caught:
            await complete_structured(client, ASK, UserTurn)
    assert server.hits == 2
    assert caught.value.output_name == "UserTurn"
    assert "is_task_complete" in caught.value.problem
    assert caught.value.reply == '{"user_message": "ok"}'


async def test_a_cut_off_reply_says_so_in_the_repair_request() -> None:
    truncated = OPENAI.ok('{"user_message": "Thanks, that')
    truncated.body["choices"][0]["finish_reason"] = "length"
    script = Script(truncated, OPENAI.ok('{"user_message": "Thanks", "is_task_complete": false}'))
    async with serve_loopback(script) as server, client_for(OPENAI, server) as client:
        await complete_structured(client, ASK, UserTurn)
    assert "cut off at max_tokens" in server.requests[1].json()["messages"][-1]["content"]


@pytest.mark.parametrize(
    "text",
    [
        '{"user_message": "hi", "is_task_complete": false}',
        '```json\n{"user_message": "hi", "is_task_complete": false}\n```',
        'Here you go: {"user_message": "hi", "is_task_complete": false} Hope it helps.',
    ],
)
def test_decode_accepts_an_object_fenced_or_inside_prose(text: str) -> None:
    assert decode_structured(text, UserTurn) == UserTurn(user_message="hi", is_task_complete=False)


def test_decode_reports_msgspec_errors_with_their_json_path() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"\$\.is_task_complete"):
        decode_structured('{"user_message": "hi", "is_task_complete": 1}', UserTurn)


def test_output_schema_inlines_the_root_and_cleans_the_name() -> None:
    schema = output_schema(UserTurn, name="user turn!")
    assert schema.name == "user_turn"
    assert schema.schema["type"] == "object"
    assert "$ref" not in schema.schema
    assert schema.schema["required"] == ["user_message", "is_task_complete"]
