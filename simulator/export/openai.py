"""``openai``: Chat Completions fine-tuning JSONL, ``{"messages": [...], "tools": [...]}``.

An assistant message the user rejected gets ``"weight": 0``: OpenAI's fine-tuning trains on
every assistant message of an example unless its ``weight`` (0 or 1) is 0, so the others
are left without the key, as an unmasked export writes them.
"""

from __future__ import annotations

import json
from typing import Any

from schemas import DialogueRecord, Environment
from simulator.export._chat import agent_tools, checked_chat, system_text
from simulator.export._formats import ExportFormat, export_format, jsonl_writer

__all__ = ["openai_tools", "to_openai"]


def openai_tools(environment: Environment) -> list[dict[str, Any]]:
    """The environment's tools in the Chat Completions ``tools`` format."""
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": t.input_schema},
        }
        for t in agent_tools(environment)
    ]


def to_openai(
    record: DialogueRecord, environment: Environment, rejected: frozenset[int] = frozenset()
) -> dict[str, Any]:
    """One dialogue as a chat fine-tuning example; the messages at indexes ``rejected`` of
    ``record.messages`` get ``"weight": 0``. Raises InvalidDialogue when its messages are not a valid chat."""
    chat = checked_chat(record)  # one chat message per record message, in order
    for index in rejected:
        chat[index]["weight"] = 0
    messages: list[dict[str, Any]] = []
    system = system_text(environment)
    if system:
        messages.append({"role": "system", "content": system})
    messages += chat
    return {"messages": messages, "tools": openai_tools(environment)}


def _line(example: dict[str, Any]) -> bytes:
    return json.dumps(example, ensure_ascii=False).encode() + b"\n"


export_format(
    ExportFormat(
        "openai",
        lambda record, environment, _line_: _line(to_openai(record, environment)),
        jsonl_writer,
        masked=lambda record, environment, _line_, rejected: _line(to_openai(record, environment, rejected)),
    )
)
