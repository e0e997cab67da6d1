"""``openai``: Chat Completions fine-tuning JSONL, ``{"messages": [...], "tools": [...]}``."""

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


def to_openai(record: DialogueRecord, environment: Environment) -> dict[str, Any]:
    """One dialogue as a chat fine-tuning example. Raises InvalidDialogue when its messages are not a valid chat."""
    messages: list[dict[str, Any]] = []
    system = system_text(environment)
    if system:
        messages.append({"role": "system", "content": system})
    messages += checked_chat(record)
    return {"messages": messages, "tools": openai_tools(environment)}


export_format(
    ExportFormat(
        "openai",
        lambda record, environment, _line: (
            json.dumps(to_openai(record, environment), ensure_ascii=False).encode() + b"\n"
        ),
        jsonl_writer,
    )
)
