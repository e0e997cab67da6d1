"""The wire shape of a conversation, once per provider format.

The providers send these shapes, and the exports write them, so a dataset exported as
``openai`` or ``anthropic`` reads exactly like what a model of that format is sent.
No SDK is imported here.

- :func:`chat_messages`: a record's normalised messages (``schemas.Message``) as
  provider-neutral :class:`ChatMessage` values.
- :func:`openai_messages`: Chat Completions messages; an assistant message that only
  calls tools carries no ``content``; arguments are JSON strings (``json.dumps``, non-ASCII kept).
- :func:`anthropic_messages`: ``(system, turns)`` for the Messages API: consecutive
  same-role turns merged, tool results in the next user turn, before any text in it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from schemas import Message
from simulator.providers._types import ChatMessage, ChatToolCall

__all__ = ["anthropic_messages", "chat_messages", "openai_messages"]


def chat_messages(messages: Sequence[Message]) -> list[ChatMessage]:
    """A record's messages as chat messages (roles ``user``, ``assistant``, ``tool``, ``system``)."""
    out: list[ChatMessage] = []
    for m in messages:
        if m.role == "tool":
            out.append(ChatMessage.tool(m.tool_call_id or "", m.content, is_error=m.is_error))
        elif m.role == "assistant":
            calls = [ChatToolCall(id=c.id, name=c.name, arguments=c.arguments) for c in m.tool_calls]
            out.append(ChatMessage.assistant(m.content, tool_calls=calls))
        elif m.role == "system":
            out.append(ChatMessage.system(m.content))
        else:
            out.append(ChatMessage.user(m.content))
    return out


def openai_messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """Chat Completions messages."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "tool":
            out.append({"role": "tool", "tool_call_id": m.tool_call_id, "content": m.text})
        elif m.role == "assistant":
            wire: dict[str, Any] = {"role": "assistant"}
            if m.text or not m.tool_calls:
                wire["content"] = m.text
            if m.tool_calls:
                wire["tool_calls"] = [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {
                            "name": c.name,
                            "arguments": c.invalid_arguments
                            if c.invalid_arguments is not None
                            else json.dumps(c.arguments, ensure_ascii=False),
                        },
                    }
                    for c in m.tool_calls
                ]
            out.append(wire)
        else:
            out.append({"role": m.role, "content": m.text})
    return out


def anthropic_messages(messages: Sequence[ChatMessage]) -> tuple[str, list[dict[str, Any]]]:
    """``(system, messages)`` for the Messages API (blocks always as lists)."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            if m.text:
                system.append(m.text)
            continue
        blocks: list[dict[str, Any]] = []
        if m.role == "tool":
            role = "user"
            result: dict[str, Any] = {"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.text}
            if m.is_error:
                result["is_error"] = True
            blocks.append(result)
        else:
            role = m.role
            if m.text:
                blocks.append({"type": "text", "text": m.text})
            blocks.extend(
                {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments} for call in m.tool_calls
            )
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        content = turn["content"]
        # The API wants a user turn's tool results before any text in it.
        turn["content"] = [b for b in content if b["type"] == "tool_result"] + [
            b for b in content if b["type"] != "tool_result"
        ]
    return "\n\n".join(system), turns
