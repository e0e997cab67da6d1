"""What every export format shares: the system text and the chat in Chat Completions shape.

The formats start from the same normalised messages (see :mod:`simulator.dialogue.recorder`)
and the same wire conversion the providers send (:mod:`simulator.providers.wire`):
``chat`` gives them in the Chat Completions shape, checked so every tool call is answered
right after its message, in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from schemas import DialogueRecord, Environment, Message
from simulator.providers.wire import chat_messages, openai_messages

__all__ = ["AgentTool", "InvalidDialogue", "agent_tools", "chat", "checked_chat", "system_text"]


class InvalidDialogue(ValueError):
    """A dialogue whose messages cannot form a valid conversation (a tool call with no result)."""


class AgentTool(NamedTuple):
    """A tool the agent was offered, as every format lists it."""

    name: str
    description: str
    input_schema: dict[str, Any]


def agent_tools(environment: Environment) -> list[AgentTool]:
    """The tools the agent had: the environment's own, or what an external server listed.

    An external environment's tools are the server's ``tools/list`` answer kept in its
    snapshot (``server.tools``); the user's own tools (``--user-server``) are not the agent's.
    """
    if environment.server is not None and not environment.tools:
        return [
            AgentTool(str(t["name"]), str(t.get("description") or ""), dict(t.get("inputSchema") or {}))
            for t in environment.server.tools
        ]
    return [AgentTool(t.name, t.description, t.input_schema) for t in environment.tools]


def system_text(environment: Environment) -> str:
    """The system prompt of an exported example: the environment's description and policy."""
    return "\n\n".join(part for part in (environment.description, environment.policy) if part)


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
    _check_roles(messages)
    out = openai_messages(chat_messages(messages))
    _check_pairing(out)
    return out


def _check_roles(messages: Sequence[Message]) -> None:
    for m in messages:
        if m.role not in {"user", "assistant", "tool", "system"}:
            raise InvalidDialogue(f"a message with role {m.role!r}")
        if m.role == "tool" and m.tool_call_id is None:
            raise InvalidDialogue("a tool message without a tool_call_id")


def checked_chat(record: DialogueRecord) -> list[dict[str, Any]]:
    """``chat(record.messages)``; raises InvalidDialogue naming the dialogue when it is not a valid chat."""
    try:
        return chat(record.messages)
    except InvalidDialogue as exc:
        raise InvalidDialogue(f"dialogue {record.id}: {exc}") from None
