"""One dialogue as the quality checks see it, read leniently from any record.

Only what every dataset has is needed: the chat messages (user, assistant with tool
calls, tool results). Scenario details (mode, persona, tasks that must be refused, who the
user is) and task boundaries (``task_started`` events) are used when present; dialogue
acts never are, so model-generated records are measured the same way as offline ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

__all__ = ["Call", "DialogueView", "Msg", "readable", "view_of"]


@dataclass(slots=True)
class Call:
    id: str
    tool: str
    args: dict[str, Any]


@dataclass(slots=True)
class Msg:
    role: str  # user | assistant | tool
    text: str = ""
    calls: list[Call] = field(default_factory=list)
    call_id: str | None = None
    tool: str | None = None
    is_error: bool = False
    #: The user message's task (from task_started events), when known.
    task: str | None = None

    def rows(self) -> list[dict[str, Any]]:
        """The rows of a tool result written as JSON (``{"rows": [...]}``, one object, a list)."""
        try:
            data = msgspec.json.decode(self.text)
        except msgspec.DecodeError:
            return []
        if isinstance(data, dict):
            if isinstance(data.get("rows"), list):
                return [r for r in data["rows"] if isinstance(r, dict)]
            if isinstance(data.get("row"), dict) and len(data) == 1:
                return [data["row"]]
            return [data]
        if isinstance(data, list):
            return [r for r in data if isinstance(r, dict)]
        return []


@dataclass(slots=True)
class DialogueView:
    id: str
    messages: list[Msg]
    mode: str = "user-oriented"
    domain: str = ""
    environment_id: str = ""
    verbosity: str | None = None
    tasks: int = 0
    #: Tasks whose request the rules forbid: the agent must refuse them.
    refusals: set[str] = field(default_factory=set)
    #: The user's row, when the scenario says who the user is: {"table", "pk", "key", "value"}.
    user: dict[str, Any] | None = None
    success: bool | None = None


def _args(raw: Any) -> dict[str, Any]:
    if isinstance(raw, str):  # OpenAI-style: arguments as a JSON string
        try:
            raw = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            return {}
    return raw if isinstance(raw, dict) else {}


def _is_error(content: str) -> bool:
    """A tool result's text that says it failed (dialogsim's ``Error (code): ...``)."""
    return content[:5].lower() == "error"


def _text(content: Any) -> str:
    if isinstance(content, list):  # content blocks
        return " ".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and "text" in b)
    return str(content or "")


def _chat_messages(raw_messages: list[Any]) -> list[Msg]:
    """Chat Completions messages (tool calls on the assistant, role ``tool`` results) or Anthropic
    Messages (``tool_use`` blocks on the assistant, ``tool_result`` blocks on the user)."""
    messages: list[Msg] = []
    for raw in raw_messages:
        if not isinstance(raw, dict):
            continue
        role = str(raw.get("role", ""))
        content = raw.get("content") or ""
        blocks = [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []
        if role == "user":
            for b in blocks:
                if b.get("type") == "tool_result":
                    text = _text(b.get("content"))
                    call_id = b.get("tool_use_id")
                    messages.append(
                        Msg("tool", text, call_id=call_id, is_error=bool(b.get("is_error")) or _is_error(text))
                    )
            text = _text([b for b in blocks if b.get("type") == "text"] if blocks else content)
            if text or not blocks:
                messages.append(Msg("user", text))
        elif role == "assistant":
            calls = []
            for c in raw.get("tool_calls") or []:
                fn = c.get("function") if isinstance(c.get("function"), dict) else c
                calls.append(Call(str(c.get("id", "")), str(fn.get("name", "")), _args(fn.get("arguments"))))
            calls.extend(
                Call(str(b.get("id", "")), str(b.get("name", "")), _args(b.get("input")))
                for b in blocks
                if b.get("type") == "tool_use"
            )
            messages.append(Msg("assistant", _text(content), calls=calls))
        elif role == "tool":
            text = _text(content)
            messages.append(
                Msg(
                    "tool",
                    text,
                    call_id=raw.get("tool_call_id"),
                    tool=raw.get("name"),
                    is_error=bool(raw.get("is_error")) or _is_error(text),
                )
            )
    names = {c.id: c.tool for m in messages for c in m.calls}
    for m in messages:
        if m.role == "tool" and m.tool is None and m.call_id in names:
            m.tool = names[m.call_id]
    return messages


def _sharegpt_messages(turns: list[Any]) -> list[Msg]:
    """ShareGPT / Hermes turns: human, gpt, function_call (a call or a list of them), observation."""
    messages: list[Msg] = []
    pending: list[Call] = []
    count = 0
    for turn in turns:
        if not isinstance(turn, dict):
            continue
        kind, value = str(turn.get("from", "")), str(turn.get("value") or "")
        if kind == "human":
            messages.append(Msg("user", value))
        elif kind == "gpt":
            messages.append(Msg("assistant", value))
        elif kind == "function_call":
            try:
                decoded = msgspec.json.decode(value)
            except msgspec.DecodeError:
                decoded = {}
            pending = []
            for c in decoded if isinstance(decoded, list) else [decoded]:
                if isinstance(c, dict):
                    count += 1
                    pending.append(Call(f"call_{count}", str(c.get("name", "")), _args(c.get("arguments"))))
            messages.append(Msg("assistant", "", calls=pending))
        elif kind == "observation":
            results: list[Any] = [value]
            if len(pending) > 1:
                try:
                    decoded = msgspec.json.decode(value)
                except msgspec.DecodeError:
                    decoded = None
                if isinstance(decoded, list) and len(decoded) == len(pending):
                    results = [str(r) for r in decoded]
            for call, text in zip(pending, results, strict=False):
                messages.append(Msg("tool", str(text), call_id=call.id, tool=call.tool, is_error=_is_error(str(text))))
            pending = []
    return messages


def readable(record: dict[str, Any]) -> bool:
    """Whether ``view_of`` can read the dialogue in ``record``: a dialogsim record, chat messages
    (Chat Completions or Anthropic Messages) or ShareGPT conversations."""
    return isinstance(record.get("messages"), list) or isinstance(record.get("conversations"), list)


def view_of(record: dict[str, Any]) -> DialogueView:
    """The view of one record: a dialogsim record, chat messages (``{"messages": [...]}``, Chat
    Completions or Anthropic Messages) or ShareGPT conversations (``{"conversations": [...]}``)."""
    if isinstance(record.get("conversations"), list):
        messages = _sharegpt_messages(record["conversations"])
    else:
        messages = _chat_messages(record.get("messages") or [])
    view = DialogueView(id=str(record.get("id", "")), messages=messages)
    scenario = record.get("scenario")
    if isinstance(scenario, dict):
        view.mode = str(scenario.get("mode", view.mode))
        view.domain = str(scenario.get("domain", ""))
        view.environment_id = str(scenario.get("environment_id", ""))
        persona = scenario.get("persona")
        if isinstance(persona, dict):
            view.verbosity = persona.get("verbosity")
        tasks = scenario.get("tasks") or []
        view.tasks = len(tasks)
        for task in tasks:
            expected = task.get("expected") or {}
            if expected.get("refusal"):
                view.refusals.add(str(task.get("id")))
        user = scenario.get("user")
        if isinstance(user, dict):
            view.user = user
    if "success" in record:
        view.success = bool(record["success"])
    _mark_tasks(view, record.get("events") or [])
    if not view.tasks:
        view.tasks = len({m.task for m in view.messages if m.task}) or (1 if messages else 0)
    return view


def _mark_tasks(view: DialogueView, events: list[Any]) -> None:
    """Give each user message the task in progress when it was sent (from ``task_started`` events)."""
    current: str | None = None
    order: list[str | None] = []
    for event in events:
        if not isinstance(event, dict):
            continue
        kind = event.get("kind")
        if kind == "task_started":
            current = str(event.get("task_id"))
        elif kind == "user_message":
            order.append(current)
    users = [m for m in view.messages if m.role == "user"]
    if len(order) == len(users):
        for m, task in zip(users, order, strict=True):
            m.task = task
