"""The OpenAI request body: tool lists are encoded once per tool set and sent exactly as given."""

from __future__ import annotations

import json

from simulator.providers import ChatMessage, Request
from simulator.providers._types import ToolDef
from simulator.providers.openai import StructuredMode, build_body, tools_payload


def _schema(field: str) -> dict[str, object]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {field: {"type": "integer"}},
        "required": [field],
    }


def _body(tools: list[ToolDef]) -> dict[str, object]:
    return build_body(
        Request(messages=[ChatMessage.user("hi")], tools=tools), mode=StructuredMode.JSON_SCHEMA, official=False
    )


def test_the_same_tool_set_is_encoded_once_and_sent_as_given() -> None:
    shared = _schema("order_id")
    first = [ToolDef(name="get_order", description="Get one order.", parameters=shared)]
    second = [ToolDef(name="get_order", description="Get one order.", parameters=shared)]  # another dialogue
    a, b = _body(first)["tools"], _body(second)["tools"]
    assert a is b
    sent = json.loads(bytes(a))
    assert sent == tools_payload(first)
    assert sent[0]["function"]["parameters"] == {k: v for k, v in shared.items() if k != "$schema"}


def test_a_different_schema_or_description_is_never_sent_from_the_cache() -> None:
    old = _body([ToolDef(name="get_order", description="Get one order.", parameters=_schema("order_id"))])["tools"]
    renamed = _body([ToolDef(name="get_order", description="Get one order.", parameters=_schema("id"))])["tools"]
    described = _body([ToolDef(name="get_order", description="Another text.", parameters=_schema("id"))])["tools"]
    assert json.loads(bytes(old))[0]["function"]["parameters"]["required"] == ["order_id"]
    assert json.loads(bytes(renamed))[0]["function"]["parameters"]["required"] == ["id"]
    assert json.loads(bytes(described))[0]["function"]["description"] == "Another text."
