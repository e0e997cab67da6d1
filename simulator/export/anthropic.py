"""``anthropic``: Messages API JSONL, ``{"system": ..., "messages": [...], "tools": [...]}``.

The format has no per-message field to mark a message not to be trained on (the Messages
API defines none, and the Claude fine-tuning data Bedrock takes allows no extraneous keys),
so it registers no ``masked`` converter:
``--rejected-turns mask`` is refused for it, and the agent messages the user rejected are
either left out with their dialogues (``drop-dialogue``) or written as they are (``keep``).
"""

from __future__ import annotations

import json
from typing import Any

from schemas import DialogueRecord, Environment
from simulator.export._chat import InvalidDialogue, agent_tools, checked_chat, system_text
from simulator.export._formats import ExportFormat, export_format, jsonl_writer
from simulator.providers.wire import anthropic_messages, chat_messages

__all__ = ["anthropic_tools", "to_anthropic"]


def anthropic_tools(environment: Environment) -> list[dict[str, Any]]:
    """The environment's tools in the Messages API ``tools`` format."""
    return [
        {"name": t.name, "description": t.description, "input_schema": t.input_schema} for t in agent_tools(environment)
    ]


def to_anthropic(record: DialogueRecord, environment: Environment) -> dict[str, Any]:
    """One dialogue as Messages API request fields, in the shape the Anthropic provider sends.

    A turn that is a single text block is written as a plain string. Raises
    InvalidDialogue when the messages are not a valid conversation.
    """
    checked_chat(record)  # every tool call answered right after it, in order
    _, turns = anthropic_messages(chat_messages(record.messages))
    if turns and turns[0]["role"] != "user":
        raise InvalidDialogue(f"dialogue {record.id}: the conversation does not start with a user message")
    for turn in turns:
        blocks = turn["content"]
        if len(blocks) == 1 and blocks[0]["type"] == "text":
            turn["content"] = blocks[0]["text"]
    out: dict[str, Any] = {}
    system = system_text(environment)
    if system:
        out["system"] = system
    out["messages"] = turns
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
