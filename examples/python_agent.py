"""An example agent for the ``python:`` way in of ``dialogsim eval``.

    dialogsim eval --agent python:examples/python_agent.py:make_agent --seed 1 --out evals/example

``make_agent(info)`` is called once per dialogue; the object it returns has
``async reply(conversation, session)``: ``conversation`` is every message so far (the last
one is the user's new message) and ``session`` an MCP client connected to the dialogue's
own tool server. Every call it makes there is recorded by the server and changes that
dialogue's database, which is what the tasks are checked against.

This agent is exact rather than clever: it reads the offline user simulator's dialogue
acts (``utterance.acts``, the machine-readable meaning of the user's template text) to
know which tool the user has in mind, asks for a missing argument in words (the offline
user answers a question that names the argument and ends with "?"), and says the values
it found. That makes it a correct reference for testing the plumbing; an LLM agent would
read ``utterance.text`` instead. ``jsonl_agent.py`` reuses ``ActPolicy``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

CallTool = Callable[[str, dict[str, Any]], Awaitable[Any]]


_FLAGS = ("is_", "has_", "accepting", "active")


def say(value: Any, column: str = "") -> str:
    """A value the way the offline user recognises it (a 0/1 flag such as ``accepting_new_patients`` as yes or no)."""
    if value is None:
        return "none"
    if isinstance(value, bool) or (value in (0, 1) and isinstance(value, int) and column.startswith(_FLAGS)):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def rows_of(structured: Any) -> list[dict[str, Any]]:
    """The rows of a tool result: ``{"rows": [...]}``, ``{"row": {...}}`` or one row."""
    if isinstance(structured, dict):
        if isinstance(structured.get("rows"), list):
            return [r for r in structured["rows"] if isinstance(r, dict)]
        if "row" in structured and len(structured) == 1:
            return [structured["row"]] if isinstance(structured["row"], dict) else []
        return [structured]
    return []


def _schema(tool: Any) -> dict[str, Any]:
    schema = tool.get("inputSchema") if isinstance(tool, dict) else getattr(tool, "input_schema", None)
    return schema if isinstance(schema, dict) else {}


def _name(tool: Any) -> str:
    return str(tool["name"] if isinstance(tool, dict) else tool.name)


class ActPolicy:
    """Runs the tools the offline user's acts ask for, over any MCP ``call_tool``."""

    def __init__(self, tools: list[Any]) -> None:
        self.required = {_name(t): list(_schema(t).get("required", [])) for t in tools}
        self.known: dict[str, Any] = {}
        self.memory: dict[str, dict[str, Any]] = {}
        self.waiting: list[dict[str, Any]] = []

    async def respond(self, acts: list[dict[str, Any]], call_tool: CallTool) -> str:
        lines: list[str] = []
        for act in acts:
            kind = act.get("act")
            if kind == "bye":
                return "You're welcome, goodbye!"
            if kind == "inform":
                self.known.update(act.get("args", {}))
            elif kind == "request":
                self.waiting.append(act)
            elif kind == "correct":
                mem = self.memory.get(act["step"], {})
                args, _ = self.arguments(
                    {"tool": act["tool"], "args": {**mem.get("args", {}), **act["args"]}, "refs": act.get("refs", {})}
                )
                lines.append(await self.run(act["step"], act["tool"], args, mem.get("report", []), call_tool))
            elif kind in {"refine", "change", "retry"}:
                mem = self.memory.get(act["step"])
                if mem is None:
                    lines.append("Sorry, could you tell me again what you need?")
                else:
                    args = {**mem["args"], **act.get("args", {})}
                    lines.append(await self.run(act["step"], mem["tool"], args, mem["report"], call_tool))
            elif kind == "verify":  # say again what the change left, field by field
                rows = self.memory.get(act["step"], {}).get("rows", [])
                fields = act.get("fields", [])
                if rows:
                    lines.append(
                        "Checked: " + "; ".join(f"{f.replace('_', ' ')} {say(rows[0].get(f), f)}" for f in fields)
                    )
        while self.waiting:
            request = self.waiting[0]
            args, missing = self.arguments(request)
            if missing:
                lines.append("What is the " + " and the ".join(m.replace("_", " ") for m in missing) + "?")
                break
            self.waiting.pop(0)
            lines.append(await self.run(request["step"], request["tool"], args, request.get("report", []), call_tool))
        return " ".join(lines) or "Is there anything else I can do for you."

    def arguments(self, request: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        args = dict(request.get("args", {}))
        for name, ref in request.get("refs", {}).items():
            rows = self.memory.get(ref["step"], {}).get("rows", [])
            if len(rows) > ref.get("row", 0):
                args[name] = rows[ref.get("row", 0)].get(ref["field"])
        missing = []
        for name in [*request.get("withheld", []), *self.required.get(request["tool"], [])]:
            if name in args:
                continue
            if name in self.known:
                args[name] = self.known[name]
            elif name not in missing:
                missing.append(name)
        return args, missing

    async def run(self, step: str, tool: str, args: dict[str, Any], report: list[str], call_tool: CallTool) -> str:
        result = await call_tool(tool, args)
        text = "".join(getattr(c, "text", "") for c in result.content)
        if result.is_error:
            return f"Sorry, that did not work: {text}"
        structured = result.structured_content
        if structured is None:
            try:
                structured = json.loads(text)
            except ValueError:
                structured = {}
        rows = rows_of(structured)
        if ":" not in step:  # a double check does not replace what the step found
            self.memory[step] = {"tool": tool, "args": args, "rows": rows, "report": report}
        if not rows:
            return "I found nothing matching that."
        shown = report or [k for k in rows[0] if not k.endswith("_id")][:4]
        described = [
            "; ".join(f"{col.replace('_', ' ')} {say(row.get(col), col)}" for col in shown) for row in rows[:3]
        ]
        head = f"Done with {tool.replace('_', ' ')}"
        if isinstance(structured, dict) and "rows" in structured:
            head += f", {len(rows)} found"
        return f"{head}: " + " | ".join(described) + "."


class ExampleAgent:
    """One dialogue's agent: the policy over the session it is given."""

    def __init__(self, tools: list[Any]) -> None:
        self.policy = ActPolicy(tools)

    async def reply(self, conversation: list[Any], session: Any) -> str:
        return await self.policy.respond(conversation[-1].acts, session.call_tool)


def make_agent(info: Any) -> ExampleAgent:
    """The factory ``python:examples/python_agent.py:make_agent`` names (``info``: simulator.eval.AgentInfo)."""
    return ExampleAgent(info.tools)
