"""``sharegpt``: ShareGPT with function calling, as LLaMA-Factory reads it.

A ``gpt`` or ``function_call`` turn made of agent messages the user rejected gets
``"weight": 0``, the key OpenAI's format uses. axolotl reads it with
``message_field_training: weight`` (a turn whose field is set is trained on only when it is
truthy; a turn without it follows ``roles_to_train``). LLaMA-Factory reads only ``from`` and
``value`` and trains on every ``gpt`` turn: for it, export with
``--rejected-turns drop-dialogue``.
"""

from __future__ import annotations

import json
from typing import Any

from schemas import DialogueRecord, Environment
from simulator.export._chat import InvalidDialogue, agent_tools, checked_chat, system_text
from simulator.export._formats import ExportFormat, export_format, jsonl_writer

__all__ = ["to_sharegpt"]


_ODD = ("human", "observation")
_EVEN = ("gpt", "function_call")


def _sharegpt_conversation(chat: list[dict[str, Any]], rejected: frozenset[int] = frozenset()) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    i = 0
    while i < len(chat):
        message = chat[i]
        role = message["role"]
        if role == "user":
            if turns and turns[-1]["from"] == "human":
                turns[-1]["value"] += "\n\n" + message["content"]
            else:
                turns.append({"from": "human", "value": message["content"]})
            i += 1
        elif role == "assistant" and message.get("tool_calls"):
            calls = [
                {"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])}
                for c in message["tool_calls"]
            ]
            if turns and turns[-1]["from"] == "gpt":
                turns.pop()  # the text said just before the calls: no place for it between them
            turns.append(
                {
                    "from": "function_call",
                    "value": json.dumps(calls[0] if len(calls) == 1 else calls, ensure_ascii=False),
                }
            )
            if i in rejected:
                turns[-1]["weight"] = 0
            results = chat[i + 1 : i + 1 + len(calls)]
            value = results[0]["content"] if len(results) == 1 else json.dumps([r["content"] for r in results])
            turns.append({"from": "observation", "value": value})
            i += 1 + len(calls)
        elif role == "assistant":
            # Messages joined into one gpt turn are of one agent turn: rejected or not together.
            if turns and turns[-1]["from"] == "gpt":
                turns[-1]["value"] += "\n\n" + message["content"]
            else:
                turns.append({"from": "gpt", "value": message["content"]})
            if i in rejected:
                turns[-1]["weight"] = 0
            i += 1
        else:
            raise InvalidDialogue(f"message {i}: a tool result that answers no call")
    while turns and turns[-1]["from"] != "gpt":
        turns.pop()
    if not turns:
        raise InvalidDialogue("no agent reply to learn from")
    for index, turn in enumerate(turns):
        if turn["from"] not in (_ODD, _EVEN)[index % 2]:
            raise InvalidDialogue(f"turn {index} ({turn['from']}) breaks the human/gpt alternation")
    return turns


def to_sharegpt(
    record: DialogueRecord, environment: Environment, rejected: frozenset[int] = frozenset()
) -> dict[str, Any]:
    """One dialogue in ShareGPT function-calling form; the turns made of the messages at indexes
    ``rejected`` of ``record.messages`` get ``"weight": 0``. Raises InvalidDialogue when it cannot be one."""
    try:
        conversations = _sharegpt_conversation(checked_chat(record), rejected)
    except InvalidDialogue as exc:
        raise InvalidDialogue(f"dialogue {record.id}: {exc}") from None
    tools = [
        {"name": t.name, "description": t.description, "parameters": t.input_schema} for t in agent_tools(environment)
    ]
    return {
        "conversations": conversations,
        "system": system_text(environment),
        "tools": json.dumps(tools, ensure_ascii=False),
    }


def _line(example: dict[str, Any]) -> bytes:
    return json.dumps(example, ensure_ascii=False).encode() + b"\n"


export_format(
    ExportFormat(
        "sharegpt",
        lambda record, environment, _line_: _line(to_sharegpt(record, environment)),
        jsonl_writer,
        masked=lambda record, environment, _line_, rejected: _line(to_sharegpt(record, environment, rejected)),
    )
)
