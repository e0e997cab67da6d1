"""``anthropic``: Messages API JSONL, ``{"system": ..., "messages": [...], "tools": [...]}``."""

from __future__ import annotations

import json
from typing import Any

from schemas import DialogueRecord, Environment
from simulator.export._chat import InvalidDialogue, checked_chat, system_text
from simulator.export._formats import ExportFormat, export_format, jsonl_writer

__all__ = ["anthropic_tools", "to_anthropic"]


def anthropic_tools(environment: Environment) -> list[dict[str, Any]]:
    """The environment's tools in the Messages API ``tools`` format."""
    return [{"name": t.name, "description": t.description, "input_schema": t.input_schema} for t in environment.tools]


def _anthropic_messages(chat: list[dict[str, Any]]) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})

    for message in chat:
        role = message["role"]
        if role == "user":
            if message["content"]:
                add("user", [{"type": "text", "text": message["content"]}])
        elif role == "assistant":
            blocks: list[dict[str, Any]] = []
            if message.get("content"):
                blocks.append({"type": "text", "text": message["content"]})
            blocks += [
                {
                    "type": "tool_use",
                    "id": call["id"],
                    "name": call["function"]["name"],
                    "input": json.loads(call["function"]["arguments"]),
                }
                for call in message.get("tool_calls", [])
            ]
            if blocks:
                add("assistant", blocks)
        else:
            block: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": message["tool_call_id"],
                "content": message["content"],
            }
            if message.get("is_error"):
                block["is_error"] = True
            add("user", [block])
    if turns and turns[0]["role"] != "user":
        raise InvalidDialogue("the conversation does not start with a user message")
    for turn in turns:
        blocks = turn["content"]
        if len(blocks) == 1 and blocks[0]["type"] == "text":
            turn["content"] = blocks[0]["text"]
    return turns


def to_anthropic(record: DialogueRecord, environment: Environment) -> dict[str, Any]:
    """One dialogue as Messages API request fields. Raises InvalidDialogue when it is not a valid conversation."""
    chat = checked_chat(record)
    try:
        errors = {m.tool_call_id for m in record.messages if m.role == "tool" and m.is_error}
        for message in chat:
            if message["role"] == "tool" and message["tool_call_id"] in errors:
                message["is_error"] = True
        messages = _anthropic_messages(chat)
    except InvalidDialogue as exc:
        raise InvalidDialogue(f"dialogue {record.id}: {exc}") from None
    out: dict[str, Any] = {}
    system = system_text(environment)
    if system:
        out["system"] = system
    out["messages"] = messages
    out["tools"] = anthropic_tools(environment)
    return out


export_format(
    ExportFormat(
        "anthropic",
        lambda record, environment, _line: (
            json.dumps(to_anthropic(record, environment), ensure_ascii=False).encode() + b"\n"
        ),
        jsonl_writer,
    )
)
