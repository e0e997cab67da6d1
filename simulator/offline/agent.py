"""The offline agent: a rule-based policy over the user's dialogue acts, calling tools over MCP.

It asks for missing required arguments instead of guessing, runs one or more tools per
request (later calls using earlier results), says what it found in plain language, and,
with a configurable small probability, makes the mistakes real agents make — taking the
wrong row of a result, or dropping a filter — which the user's feedback then corrects.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types

from schemas import ValueRef
from schemas.errors import ConfigError
from simulator.dialogue.roles import AgentContext, AgentFactory, AgentTurn
from simulator.offline.acts import (
    Act,
    Ask,
    Bye,
    Change,
    Correct,
    Inform,
    Refine,
    Report,
    Request,
    Retry,
    Verify,
)
from simulator.offline.language import Phrasing, describe_row, format_value
from simulator.offline.planner import rows_of

__all__ = ["CallTool", "OfflineAgent", "offline_agent_brain"]

CallTool = Callable[[str, dict[str, Any]], Awaitable[types.CallToolResult]]

_CONTROL_ARGS = {"limit", "order_by", "descending"}


@dataclass(slots=True)
class _Memory:
    tool: str
    args: dict[str, Any]
    rows: list[dict[str, Any]]
    table: str | None
    report: list[str]


class OfflineAgent:
    """The rule-based agent of one dialogue.

    ``call_tool`` calls the dialogue's MCP server; ``tools`` is what the server listed.
    """

    brain = "offline-rules"

    def __init__(
        self,
        call_tool: CallTool,
        tools: list[types.Tool],
        *,
        rng: random.Random,
        mistake_rate: float = 0.0,
        greeted: bool = False,
    ) -> None:
        self.call_tool = call_tool
        self.tools = {t.name: t for t in tools}
        self.rng = rng
        self.say = Phrasing(rng)
        self.mistake_rate = mistake_rate
        self.memory: dict[str, _Memory] = {}
        self.known: dict[str, Any] = {}
        self.waiting: list[Request] = []
        self.mistakes = 0
        self.greeted = greeted

    async def respond(self, text: str, acts: list[Act]) -> AgentTurn:
        """Act on one user message (its acts; the text is template language) and say what happened."""
        turn = AgentTurn(text="")
        lines: list[str] = []
        if not self.greeted:
            self.greeted = True
            lines.append(self.say.agent_greeting())
        if any(isinstance(a, Bye) for a in acts):
            turn.acts.append(Bye())
            turn.text = self.say.agent_bye()
            return turn
        for act in acts:
            if isinstance(act, Inform):
                self.known.update(act.args)
            elif isinstance(act, Request):
                self.waiting.append(act)
            elif isinstance(act, Correct):
                report = self.memory[act.step].report if act.step in self.memory else []
                await self._execute(act.step, act.tool, act.args, report, lines, turn.acts, slip=False)
            elif isinstance(act, Refine | Change):
                await self._rerun(act.step, act.args, replace=False, lines=lines, acts=turn.acts, slip=True)
            elif isinstance(act, Retry):
                await self._rerun(act.step, {}, replace=False, lines=lines, acts=turn.acts)
            elif isinstance(act, Verify):
                await self._execute(f"{act.step}:verify", act.tool, act.args, [], lines, turn.acts, slip=False)
        while self.waiting:
            request = self.waiting[0]
            args, missing = self._arguments(request)
            if missing:
                turn.acts.append(Ask(step=request.step, slots=missing))
                lines.append(self.say.ask(missing))
                break
            self.waiting.pop(0)
            await self._execute(request.step, request.tool, args, request.report, lines, turn.acts, slip=True)
        if not (turn.acts and isinstance(turn.acts[-1], Ask)):
            lines.append(self.say.more())
        turn.text = " ".join(line for line in lines if line)
        return turn

    async def aclose(self) -> None:
        """Nothing to release: the runner owns the MCP client."""

    # ------------------------------------------------------------------ internals
    def _arguments(self, request: Request) -> tuple[dict[str, Any], list[str]]:
        args = dict(request.args)
        for name, ref in request.refs.items():
            value = self._resolve(ref)
            if value is not None:
                args[name] = value
        missing = []
        for name in request.withheld:
            if name in self.known:
                args[name] = self.known[name]
            elif name not in args:
                missing.append(name)
        tool = self.tools.get(request.tool)
        required = tool.input_schema.get("required", []) if tool else []
        for name in required:
            if name not in args:
                if name in self.known:
                    args[name] = self.known[name]
                elif name not in missing:
                    missing.append(name)
        return args, missing

    def _resolve(self, ref: ValueRef) -> Any:
        mem = self.memory.get(ref.step)
        if mem is None or len(mem.rows) <= ref.row:
            return None
        value = mem.rows[ref.row].get(ref.field)
        if ref.pattern is not None:  # a value inside a text result (external servers)
            found = re.search(ref.pattern, str(value)) if value is not None else None
            return found.group(1) if found is not None else None
        return value

    async def _rerun(
        self,
        step: str,
        args: dict[str, Any],
        *,
        replace: bool,
        lines: list[str],
        acts: list[Act],
        slip: bool = False,
    ) -> None:
        mem = self.memory.get(step)
        if mem is None:
            lines.append("I'm sorry, I don't have that request on record — could you tell me again what you need?")
            return
        merged = dict(args) if replace else {**mem.args, **args}
        await self._execute(step, mem.tool, merged, mem.report, lines, acts, slip=slip)

    async def _execute(
        self,
        step: str,
        tool: str,
        args: dict[str, Any],
        report: list[str],
        lines: list[str],
        acts: list[Act],
        *,
        slip: bool,
    ) -> None:
        sent = dict(args)
        mistake = None
        annotations = self.tools[tool].annotations if tool in self.tools else None
        reads = annotations is not None and annotations.read_only_hint is True
        if ":" not in step:
            # Remember the request before running it, so a failed step can be redone.
            self.memory[step] = _Memory(tool, args, [], _table_of(tool), report)
        if slip and reads and self.rng.random() < self.mistake_rate:
            droppable = [k for k in sent if k not in _CONTROL_ARGS or k == "descending"]
            required = set((self.tools[tool].input_schema.get("required", [])) if tool in self.tools else [])
            droppable = [k for k in droppable if k not in required]
            if len(sent) >= 2 and droppable:
                mistake = "missing_filter"
                del sent[self.rng.choice(droppable)]
            else:
                mistake = "wrong_row"
        result = await self.call_tool(tool, sent)
        text = "".join(c.text for c in result.content if isinstance(c, types.TextContent))
        if result.is_error:
            acts.append(Report(step=step, tool=tool, ok=False))
            lines.append(f"{self.say.failed()} {text}")
            return
        structured = result.structured_content
        if structured is None:
            try:
                structured = json.loads(text)
            except ValueError:
                structured = {"result": text}
        rows = rows_of(structured)
        if mistake == "wrong_row":
            if len(rows) >= 2:
                rows = [*rows[1:], rows[0]]
            else:
                mistake = None  # one row cannot be the wrong one
        if mistake is not None:
            self.mistakes += 1
        if ":" not in step:  # double checks (``step:verify``) do not replace what the step found
            self.memory[step].rows = rows
        shown = report or [k for k in (rows[0] if rows else {}) if not k.endswith("_id")][:4]
        values = {k: rows[0].get(k) for k in shown} if rows else {}
        acts.append(Report(step=step, tool=tool, ok=True, values=values))
        lines.append(self._describe(tool, structured, rows, shown))

    def _describe(self, tool: str, structured: Any, rows: list[dict[str, Any]], shown: list[str]) -> str:
        table = _table_of(tool) or "record"
        annotations = self.tools[tool].annotations if tool in self.tools else None
        write = annotations is not None and annotations.read_only_hint is False
        if tool.startswith("count_") and rows and "count" in rows[0]:
            extra = describe_row(
                rows[0], [k for k, v in rows[0].items() if k not in {"count", "group"} and v is not None]
            )
            groups = f" in group {format_value(rows[0]['group'])}" if rows[0].get("group") is not None else ""
            return f"The count{groups} is {format_value(rows[0]['count'])}." + (f" Also: {extra}." if extra else "")
        if isinstance(structured, dict) and "rows" in structured:
            if not rows:
                return self.say.found_none(table)
            head = self.say.found_many(table, len(rows))
            first = describe_row(rows[0], shown)
            rest = "; ".join(describe_row(r, shown) for r in rows[1:3])
            text = f"{head} The first one: {first}."
            if rest:
                text += f" Next: {rest}."
            return text
        if write:
            return f"{self.say.done()} {describe_row(rows[0], shown) if rows else 'the change is saved'}."
        if rows and shown:
            return f"{self.say.found_one(table)} {describe_row(rows[0], shown)}."
        if isinstance(structured, dict):
            return ", ".join(f"{k} {format_value(v)}" for k, v in structured.items()) + "."
        return str(structured)


def _table_of(tool: str) -> str | None:
    for prefix in ("get_", "search_", "count_", "create_", "update_", "delete_"):
        if tool.startswith(prefix):
            return tool[len(prefix) :]
    if tool.startswith("list_") and "_for_" in tool:
        return tool[len("list_") :].split("_for_")[0]
    return None


def offline_agent_brain(argument: str) -> AgentFactory:
    """The ``offline`` agent spec: takes no argument."""
    if argument:
        raise ConfigError(f"the offline agent takes no argument, got {argument!r}")

    async def factory(ctx: AgentContext) -> OfflineAgent:
        async def call_tool(name: str, arguments: dict[str, Any]) -> types.CallToolResult:
            with anyio.fail_after(ctx.call_timeout_s):
                return await ctx.client.call_tool(name, arguments)

        return OfflineAgent(call_tool, ctx.tools, rng=ctx.rng, mistake_rate=ctx.mistake_rate, greeted=bool(ctx.history))

    return factory
