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

__all__ = ["Call", "DialogueView", "Msg", "view_of"]


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


def view_of(record: dict[str, Any]) -> DialogueView:
    """The view of one record: a dialogsim record, or any ``{"messages": [...]}`` in chat format."""
    messages: list[Msg] = []
    for raw in record.get("messages") or []:
        if not isinstance(raw, dict):
            continue
        role = str(raw.get("role", ""))
        content = raw.get("content") or ""
        if isinstance(content, list):  # content blocks
            content = " ".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
        if role == "user":
            messages.append(Msg("user", str(content)))
        elif role == "assistant":
            calls = []
            for c in raw.get("tool_calls") or []:
                fn = c.get("function") if isinstance(c.get("function"), dict) else c
                calls.append(Call(str(c.get("id", "")), str(fn.get("name", "")), _args(fn.get("arguments"))))
            messages.append(Msg("assistant", str(content), calls=calls))
        elif role == "tool":
            messages.append(
                Msg(
                    "tool",
                    str(content),
                    call_id=raw.get("tool_call_id"),
                    tool=raw.get("name"),
                    is_error=bool(raw.get("is_error")) or str(content).startswith("error"),
                )
            )
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
