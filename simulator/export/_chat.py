"""What every export format shares: the system text and the chat in Chat Completions shape.

The formats start from the same normalised messages (see :mod:`simulator.dialogue.recorder`):
``chat`` gives them in the Chat Completions shape, checked so every tool call is answered
right after its message, in order; formats that need another shape convert from it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from schemas import DialogueRecord, Environment, Message

__all__ = ["InvalidDialogue", "chat", "checked_chat", "system_text"]


class InvalidDialogue(ValueError):
    """A dialogue whose messages cannot form a valid conversation (a tool call with no result)."""


def system_text(environment: Environment) -> str:
    """The system prompt of an exported example: the environment's description and policy."""
    return "\n\n".join(part for part in (environment.description, environment.policy) if part)


def _chat_message(message: Message) -> dict[str, Any]:
    if message.role in ("user", "system"):
        return {"role": message.role, "content": message.content}
    if message.role == "assistant":
        out: dict[str, Any] = {"role": "assistant"}
        if message.content or not message.tool_calls:
            out["content"] = message.content
        if message.tool_calls:
            out["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {
                        "name": call.name,
                        "arguments": json.dumps(call.arguments, ensure_ascii=False),
                    },
                }
                for call in message.tool_calls
            ]
        return out
    if message.role == "tool":
        if message.tool_call_id is None:
            raise InvalidDialogue("a tool message without a tool_call_id")
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    raise InvalidDialogue(f"a message with role {message.role!r}")


def _check_pairing(messages: list[dict[str, Any]]) -> None:
    """Every tool call is answered right after its message, in order; no tool message is unasked."""
    expected: list[str] = []
    for i, message in enumerate(messages):
        if message["role"] == "tool":
            if not expected or message["tool_call_id"] != expected[0]:
                raise InvalidDialogue(f"message {i}: tool result {message['tool_call_id']!r} answers no call")
            expected.pop(0)
            continue
        if expected:
            raise InvalidDialogue(f"message {i}: tool call {expected[0]!r} has no result before it")
        expected = [call["id"] for call in message.get("tool_calls", [])]
    if expected:
        raise InvalidDialogue(f"tool call {expected[0]!r} has no result")


def chat(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """The messages in the Chat Completions shape, checked for call/result pairing."""
    out = [_chat_message(m) for m in messages]
    _check_pairing(out)
    return out


def checked_chat(record: DialogueRecord) -> list[dict[str, Any]]:
    """``chat(record.messages)``; raises InvalidDialogue naming the dialogue when it is not a valid chat."""
    try:
        return chat(record.messages)
    except InvalidDialogue as exc:
        raise InvalidDialogue(f"dialogue {record.id}: {exc}") from None
