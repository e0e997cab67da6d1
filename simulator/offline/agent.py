"""The offline agent: a rule-based, policy-following agent over the user's parsed words, calling tools over MCP.

It acts only on what it was told (the user's dialogue acts, a faithful parse of their
words) and on what its tools returned, and it follows the environment's rules
(``schemas.policy``): it identifies the user before it touches their rows, checks that a
row it found is theirs, checks a change against the allowed transitions and fields
before proposing it, restates every write and waits for the user's yes, refuses what
the rules forbid (saying why), reports tool errors in plain words with a next step, and
says only the fields the user asked about. With a small configurable probability it
makes the mistakes real agents make reading a result of several rows — saying the second
row's fields as the first's, or overlooking the last row — always in a way its words
show, so the user's feedback, which reads only the words, can correct them.
"""

from __future__ import annotations

import functools
import json
import random
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types

from schemas import ValueRef
from schemas.errors import ConfigError
from schemas.policy import Policy, ToolRule
from simulator.dialogue.roles import AgentContext, AgentFactory, AgentTurn
from simulator.offline._inflect import plural
from simulator.offline.acts import (
    Act,
    Affirm,
    Ask,
    Bye,
    Change,
    Confirm,
    Correct,
    Inform,
    Refine,
    Refuse,
    Report,
    Request,
    Retry,
    Verify,
)
from simulator.offline.language import (
    Phrasing,
    a,
    attach,
    cap,
    dash_case,
    entity,
    field_name,
    format_value,
    join,
    label,
    named,
    total_of,
)
from simulator.offline.planner import rows_of
from toolservers.naming import singular

__all__ = ["CallTool", "OfflineAgent", "offline_agent_brain"]

CallTool = Callable[[str, dict[str, Any]], Awaitable[types.CallToolResult]]

_CONTROL = frozenset({"limit", "order_by", "descending", "group_by", "include_cancelled", "only_free"})
_NAMES = ("name", "title", "medication", "flight_number", "number", "reference", "label", "code")


@functools.lru_cache(maxsize=4096)
def _names_a_row(column: str) -> bool:
    """Whether a column of this name can name its row (see ``OfflineAgent._naming``)."""
    low = column.lower()
    return any(h in low for h in _NAMES)


@dataclass(slots=True)
class _Memory:
    tool: str
    args: dict[str, Any]
    rows: list[dict[str, Any]]
    table: str | None
    report: list[str]


@dataclass(slots=True)
class _Write:
    step: str
    tool: str
    args: dict[str, Any]
    report: list[str]
    text: str = ""
    #: The restatement as "I'll <do it>", the form the done line is made from ("I've <done it>").
    plain: str = ""
    #: Names of what the changed row points at (a doctor, the products of an order), for the restatement.
    names: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Turn:
    lines: list[str] = field(default_factory=list)
    acts: list[Act] = field(default_factory=list)
    asked: bool = False
    #: Names read one get call at a time (the products of an order), said in one sentence.
    names: dict[str, list[str]] = field(default_factory=dict)
    #: Where in ``lines`` each table's collected names go.
    slots: dict[str, int] = field(default_factory=dict)
    #: Lines that only counted rows ("I found 4 loans."): index -> (count, noun of the rows).
    counted: dict[int, tuple[int, str]] = field(default_factory=dict)

    def flush(self, say: Phrasing) -> None:
        for table, at in sorted(self.slots.items(), key=lambda x: -x[1]):
            names = self.names.get(table, [])
            if not names:
                continue
            before = self.counted.get(at - 1)
            if before is not None and say.rng.random() < 0.4:  # "Your 4 loans are for A, B and C."
                self.lines[at - 1] = _counted_names(before[0], before[1], table, names, say)
            else:
                self.lines.insert(at, _names_line(table, names, say))
        self.names.clear()
        self.slots.clear()
        self.counted.clear()


class OfflineAgent:
    """The rule-based agent of one dialogue.

    ``call_tool`` calls the dialogue's MCP server; ``tools`` is what the server listed;
    ``rules`` the environment's policy as data (None: no rules to follow beyond asking).
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
        rules: Policy | None = None,
        currency: str = "",
    ) -> None:
        self.call_tool = call_tool
        self.tools = {t.name: t for t in tools}
        self._gets: dict[str, tuple[str, str] | None] = {}  # see _get_tool
        self.rng = rng
        self.say = Phrasing(rng, currency=currency)
        #: Some agents give the day of the week with a date ("Sunday 7 June 2026").
        self.say.weekday = rng.random() < 0.3
        self.mistake_rate = mistake_rate
        self.rules = rules
        self.memory: dict[str, _Memory] = {}
        self.known: dict[str, Any] = {}
        self.waiting: list[Request] = []
        self.confirming: list[_Write] = []
        self.failed: dict[str, _Write] = {}
        self.writes: dict[str, tuple[str, dict[str, Any]]] = {}
        self.mistakes = 0
        #: Steps whose result it misread by overlooking a row, and the steps that would have used
        #: that row: it does not know the row is there, so it looks nothing up for it.
        self.overlooked: set[str] = set()
        self.asks: dict[str, int] = {}
        #: Every request run, by step: a correction re-reads its references from fresh results.
        self.requests: dict[str, Request] = {}
        #: The arguments each write was last sent with.
        self.sent: dict[str, dict[str, Any]] = {}
        #: Steps already re-run on request (a refinement): a second request is a correction.
        self.rerun: set[str] = set()
        self.greeted = greeted
        self.me: dict[str, Any] | None = None
        self.recap = ""
        #: What the user has said, lower case: a date they wrote without its year is restated the same way.
        self.heard = ""
        #: Names that describe the row just read (set by ``_read``, used once by ``_describe``).
        self.about: list[str] = []
        self._tables = self._table_names()

    # ------------------------------------------------------------------ the turn
    async def respond(self, text: str, acts: list[Act]) -> AgentTurn:
        """Act on one user message (its parse) and say what happened."""
        t = _Turn()
        self.heard += " " + text.lower()
        if not self.greeted:
            self.greeted = True
            t.lines.append(self.say.agent_greeting())
        if any(isinstance(x, Bye) for x in acts):
            first = (self.me or {}).get("first_name") or str((self.me or {}).get("name", "")).split(" ")[0]
            return AgentTurn(text=dash_case(self.say.agent_bye(first, self.recap)), acts=[Bye()])
        affirmed = False
        for act in acts:
            if isinstance(act, Inform):
                self.known.update(act.args)
            elif isinstance(act, Request):
                self.waiting.append(act)
            elif isinstance(act, Affirm):
                affirmed = True
            elif isinstance(act, Change):
                self._change(act)
            elif isinstance(act, Correct):
                await self._correct(act, t)
            elif isinstance(act, Refine):
                await self._rerun(act.step, act.args, t)
            elif isinstance(act, Retry):
                await self._rerun(act.step, {}, t)
            elif isinstance(act, Verify):
                await self._verify(act, t)
        if affirmed and self.confirming:
            await self._run_writes(t)
        elif any(isinstance(x, Change) for x in acts) and self.confirming:
            await self._gather(t)
            self._ask_confirmation(t)
        await self._work(t)
        t.flush(self.say)
        lines = [line for line in t.lines if line]
        if not t.asked and not self.confirming:
            first = (self.me or {}).get("first_name") or ""
            more = self.say.more(str(first))
            if lines and self.rng.random() < (0.6 if len(" ".join(lines).split()) > 12 else 0.3):
                more = ""  # a long answer often simply ends: not every turn closes with "anything else?"
            if not more:
                pass
            elif lines and self.rng.random() < 0.9:
                lines[-1] = attach(lines[-1], more)
            else:
                lines.append(cap(more))
        merged: list[str] = []
        for line in lines:
            if merged and len(merged[-1].split()) <= 6 and self.rng.random() < 0.9:
                merged[-1] = attach(merged[-1], line)
            else:
                merged.append(line)
        lines = merged
        return AgentTurn(text=dash_case(" ".join(lines)), acts=t.acts)

    async def aclose(self) -> None:
        """Nothing to release: the runner owns the MCP client."""

    # ------------------------------------------------------------------ requests
    async def _work(self, t: _Turn) -> None:
        while self.waiting and not t.asked:
            request = self.waiting[0]
            pending = {w.step for w in self.confirming}
            if pending and (not self._is_write(request.tool) or any(r.step in pending for r in request.refs.values())):
                break  # what comes after a change may depend on it: the change is confirmed first
            args, missing = self._arguments(request)
            if missing and any(r.step in self.overlooked for r in request.refs.values()):
                self.overlooked.add(request.step)  # about a row it overlooked: nothing to look up
                self.requests[request.step] = request  # (what it was asked, should the user say so)
                self.waiting.pop(0)
                continue
            if self._is_write(request.tool):
                refusal = self._policy_refusal(request.tool, args)
                if refusal:  # no need to ask for details of something that cannot be done
                    self.waiting.pop(0)
                    await self._explain_row(request.tool, args, t)
                    self._refuse(request.step, refusal, t)
                    continue
            if missing:
                self.asks[request.step] = self.asks.get(request.step, 0) + 1
                if self.asks[request.step] > 2:
                    self.waiting.clear()
                    t.lines.append(
                        self.say.pick(
                            (
                                "Without those details I can't go further with that one, I'm afraid.",
                                "I'm sorry, I can't continue with that without the details.",
                                "Then I'll have to leave that request for now.",
                            )
                        )
                    )
                    return
                slots = self._asked_slots(missing)
                t.acts.append(Ask(step=request.step, slots=slots))
                t.lines.append(self._ask_words(request, slots))
                t.asked = True
                return
            self.waiting.pop(0)
            self.requests[request.step] = request
            if self._is_write(request.tool):
                refusal = self._policy_refusal(request.tool, args)
                if refusal:
                    self._refuse(request.step, refusal, t)
                    continue
                self.confirming.append(_Write(request.step, request.tool, args, request.report))
                continue
            refusal = await self._read(request.step, request.tool, args, request.report, t, slip=True)
            if refusal:
                self._refuse(request.step, refusal, t)
        if self.confirming and not t.asked:
            await self._gather(t)
            self._ask_confirmation(t)

    async def _explain_row(self, tool: str, args: dict[str, Any], t: _Turn) -> None:
        """Before a refusal about one of the user's rows, say what the row is (what it points at)."""
        rule = self._rule(tool)
        if rule is None or not self._owned(rule.table):
            return
        row = self._row_with(rule.table, rule.key, args.get(rule.key)) if rule.key else None
        row = row or self._row_by_pk(rule.table, args)
        if row is None:
            return
        names = await self._row_names(rule.table, row, budget=3)
        if names:
            t.lines.append(
                self.say.pick(
                    (
                        "That is {s} ({n}).",
                        "I can see {s}, which is for {n}.",
                        "I've found {s} ({n}).",
                        "I have {s} here — the one for {n}.",
                        "That's {s}, for {n}.",
                        "I've pulled up {s} ({n}).",
                        "Right, {s}: it goes with {n}.",
                        "I'm looking at {s} ({n}).",
                    )
                ).format(s=self._thing(rule.table, row), n=join(names))
            )

    def _refuse(self, step: str, reason: str, t: _Turn) -> None:
        t.acts.append(Refuse(step=step, rule=reason))
        t.lines.append(self.say.refuse(reason))
        # What builds on the refused step cannot be done either: drop it too.
        dropped = {step}
        for request in list(self.waiting):
            if any(ref.step in dropped for ref in request.refs.values()):
                dropped.add(request.step)
                self.waiting.remove(request)
        self.confirming = [w for w in self.confirming if w.step not in dropped]

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
        for name in tool.input_schema.get("required", []) if tool else []:
            if name not in args:
                if name in self.known:
                    args[name] = self.known[name]
                elif name not in missing:
                    missing.append(name)
        return args, missing

    def _asked_slots(self, missing: list[str]) -> list[str]:
        """What to ask for: the missing values, or, to identify the user, one or more of the ways
        the rules allow (chosen here, not from what the user happens to know)."""
        ways = list(self.rules.identify_by) if self.rules is not None else []
        if not missing or not ways or not all(m in ways for m in missing) or len(ways) == 1:
            return missing
        roll = self.rng.random()
        if roll < 0.6:
            return [ways[0] if self.rng.random() < 0.4 else self.say.pick(ways)]
        if roll < 0.9:
            pair = self.rng.sample(range(len(ways)), 2)
            return [ways[i] for i in sorted(pair)]
        return ways

    def _ask_words(self, request: Request, missing: list[str]) -> str:
        if self.rules is not None and all(m in self.rules.identify_by for m in missing):
            # What the user wants to see, when the next request says ("your loans"), else their account.
            wanted = [self._table(r.tool) for r in self.waiting if r is not request and not self._is_write(r.tool)]
            tables = [t for t in wanted if t and t != self.rules.user_table and self._owned(t)]
            things = plural(entity(tables[0])) if tables else self.say.pick(("account details", "account", "records"))
            return self.say.identify(things, missing)
        return self.say.ask(missing)

    def _resolve(self, ref: ValueRef) -> Any:
        mem = self.memory.get(ref.step)
        if mem is None or len(mem.rows) <= ref.row:
            return None
        value = mem.rows[ref.row].get(ref.field)
        if ref.pattern is not None:  # a value inside a text result (external servers)
            found = re.search(ref.pattern, str(value)) if value is not None else None
            return found.group(1) if found is not None else None
        return value

    # ------------------------------------------------------------------ reads
    async def _read(
        self, step: str, tool: str, args: dict[str, Any], report: list[str], t: _Turn, *, slip: bool
    ) -> str:
        """Run a read and report it; the rule it breaks (another person's row) when it does, else ""."""
        table = self._table(tool)
        self.memory[step] = _Memory(tool, args, [], table, report)
        self.overlooked.discard(step)
        result = await self.call_tool(tool, args)
        text = _text(result)
        if result.is_error:
            t.acts.append(Report(step=step, tool=tool, ok=False, error=_code(text)))
            t.lines.append(self.say.error(self._explain(tool, args, text)))
            t.asked = True
            return ""
        structured = _structured(result, text)
        rows = rows_of(structured)
        self._identify(table, args, rows)
        foreign = self._not_theirs(table, rows)
        if foreign:
            self.memory[step].rows = rows
            return foreign
        if slip and len(rows) >= 2 and self.rng.random() < self.mistake_rate:
            # The mistakes real agents make reading a result: taking the second row for the first
            # where the answer says the first row's fields, else overlooking the last row (an item
            # of a list gone unmentioned). Either shows in the words, so the user can catch it.
            if self._first_row_said(rows, report):
                rows = [*rows[1:], rows[0]]
            else:
                rows = rows[:-1]
                self.overlooked.add(step)
            self.mistakes += 1
        self.memory[step].rows = rows
        values = {k: rows[0].get(k) for k in report} if rows else {}
        t.acts.append(Report(step=step, tool=tool, ok=True, values=values))
        if report and len(rows) == 1 and table and self._owned(table):
            self.about = await self._row_names(table, rows[0], budget=4)
        if tool.startswith("get_") and rows and table and len(report) == 1 and report == self._naming(rows[0]):
            t.slots.setdefault(table, len(t.lines))
            t.names.setdefault(table, []).append(str(rows[0][report[0]]))
            return ""
        line = self._describe(tool, table, structured, rows, report, args)
        if line:
            if tool.startswith("list_") and not report and len(rows) > 1 and table:
                t.counted[len(t.lines)] = (len(rows), entity(table))
            t.lines.append(line)
        return ""

    def _first_row_said(self, rows: list[dict[str, Any]], report: list[str]) -> bool:
        """Whether the answer says fields of the first row that the second row has otherwise."""
        naming = set(self._naming(rows[0]))
        return any(k not in naming and rows[0].get(k) != rows[1].get(k) for k in report)

    async def _rerun(self, step: str, extra: dict[str, Any], t: _Turn) -> None:
        mem = self.memory.get(step)
        if mem is None:
            t.lines.append("I'm sorry, I don't have that request on record — could you tell me again what you need?")
            return
        report = list(mem.report)
        if isinstance(extra.get("order_by"), str) and extra["order_by"] not in report:
            report.append(extra["order_by"])
        # Asked again (the first answer was wrong): done with care, as a correction is.
        first = step not in self.rerun
        self.rerun.add(step)
        await self._read(step, mem.tool, {**mem.args, **extra}, report, t, slip=first)

    async def _correct(self, act: Correct, t: _Turn) -> None:
        mem = self.memory.get(act.step)
        if self._is_write(act.tool):
            write = self.failed.pop(act.step, None) or _Write(act.step, act.tool, {}, mem.report if mem else [])
            base = self.sent.get(act.step, write.args)
            resolved = {k: v for k, r in act.refs.items() if (v := self._resolve(r)) is not None}
            write.args = {**base, **write.args, **resolved, **act.args}
            if not self._complete(write):
                t.lines.append(
                    "I'm sorry, I don't have enough details to redo that — could you tell me again what you need?"
                )
                return
            self.confirming.append(write)
            return
        known = self.requests.get(act.step)
        report = mem.report if mem else (known.report if known else [])
        request = Request(
            step=act.step,
            tool=act.tool,
            args={**(mem.args if mem else {}), **act.args},
            refs=act.refs or (known.refs if known else {}),
            report=report,
        )
        args, missing = self._arguments(request)
        rules = self.rules
        if (
            not missing
            and rules is not None
            and self._table(act.tool) == rules.user_table
            and not any(k in args for k in rules.identify_by)
        ):
            # Asked to redo finding the user without a way to find them: ask for one, never take
            # whoever a search without one lists first.
            request = Request(
                step=act.step,
                tool=act.tool,
                args=request.args,
                refs=request.refs,
                report=report,
                withheld=rules.identify_by[:1],
            )
            missing = rules.identify_by[:1]
        if missing:
            self.waiting.insert(0, request)
            return
        refusal = await self._read(act.step, act.tool, args, report, t, slip=False)
        if refusal:
            self._refuse(act.step, refusal, t)

    def _complete(self, write: _Write) -> bool:
        tool = self.tools.get(write.tool)
        return tool is not None and all(n in write.args for n in tool.input_schema.get("required", []))

    async def _verify(self, act: Verify, t: _Turn) -> None:
        """Read back the row a write changed, with its get tool, and say the fields again."""
        written = self.writes.get(act.step)
        if written is None:
            t.lines.append("I don't have a change of that on record — could you tell me again what you need?")
            return
        table, row = written
        get = self._get_tool(table)
        if get is None or row.get(get[1]) is None:
            # Nothing to read it back with: say so, and what the change itself returned.
            shown = [f for f in act.fields if f in row]
            if shown:
                t.acts.append(Report(step=act.step, tool=act.step, ok=True, values={f: row.get(f) for f in shown}))
                facts = join([self._field(f, row.get(f)) for f in shown])
                t.lines.append(
                    f"I have no way to re-read {self._thing(table, row)} from here, "
                    f"but the reply to the change said {facts}."
                )
            return
        name, key = get
        result = await self.call_tool(name, {key: row[key]})
        text = _text(result)
        if result.is_error:
            t.acts.append(Report(step=act.step, tool=name, ok=False, error=_code(text)))
            t.lines.append(self.say.error(self._explain(name, {key: row[key]}, text)))
            return
        rows = rows_of(_structured(result, text))
        if not rows:
            return
        fresh = rows[0]
        self.writes[act.step] = (table, fresh)
        about = await self._row_names(table, fresh, budget=2, fresh=True) if self._owned(table) else []
        shown = [f for f in act.fields if f in fresh] or list(act.fields)
        t.acts.append(Report(step=act.step, tool=name, ok=True, values={f: fresh.get(f) for f in shown}))
        facts = join([self._field(f, fresh.get(f)) for f in shown])
        what = self._thing(table, fresh) + (f" ({join(about)})" if about else "")
        t.lines.append(
            self.say.pick(
                (
                    "I've just checked {what} again: {facts}.",
                    "Checked {what} once more — {facts}.",
                    "I re-read {what} from the system: {facts}.",
                    "Looking at {what} again now, {facts}.",
                    "Fresh from the system, for {what}: {facts}.",
                    "I've looked at {what} one more time: {facts}.",
                    "A second look at {what} shows {facts}.",
                    "Re-checking {what}, {facts}.",
                    "I've pulled {what} up again, and {facts}.",
                    "Double-checked: for {what}, {facts}.",
                    "Reading {what} again now: {facts}.",
                    "Just re-read {what} — {facts}.",
                )
            ).format(facts=facts, what=what)
        )

    # ------------------------------------------------------------------ writes
    def _change(self, act: Change) -> None:
        for write in self.confirming:
            if write.step == act.step:
                write.args.update(act.args)
                return
        failed = self.failed.pop(act.step, None)
        if failed is not None:
            failed.args.update(act.args)
            self.confirming.append(failed)

    async def _gather(self, t: _Turn) -> None:
        """Look up what a restatement names: the public rows a write's row points at, and its items."""
        for write in self.confirming:
            if write.names:
                continue
            rule = self._rule(write.tool)
            table = rule.table if rule else self._table(write.tool)
            if table is None:
                continue
            row = None
            if rule is not None and rule.key:
                row = self._row_with(table, rule.key, write.args.get(rule.key))
            if row is None:
                row = self._row_by_pk(table, write.args)
            if row is None:
                if rule is not None and rule.action == "create":
                    await self._check_conflicts(write)
                continue
            if self.rules is not None and table == self.rules.user_table:
                continue
            write.names = await self._row_names(table, row, budget=4)

    async def _row_names(self, table: str, row: dict[str, Any], *, budget: int = 3, fresh: bool = False) -> list[str]:
        """What describes a row to a person: the names of the public rows it points at and of its items'."""
        names = await self._linked_names(table, row, budget=min(budget, 2), fresh=fresh)
        budget -= len(names)
        get = self._get_tool(table)
        key = get[1] if get else None
        for list_name, tool in self.tools.items():
            if budget <= 0 or key is None or row.get(key) is None:
                break
            if not list_name.startswith("list_") or not list_name.endswith(f"_for_{singular(table)}"):
                continue
            if tool.input_schema.get("required", []) != [key]:
                continue
            result = await self.call_tool(list_name, {key: row[key]})
            budget -= 1
            if result.is_error:
                continue
            child_table = self._table(list_name)
            for child in rows_of(_structured(result, _text(result)))[:3]:
                if budget <= 0:
                    break
                if child_table is None:
                    break
                got = await self._linked_names(child_table, child, budget=1, skip=table, fresh=fresh)
                budget -= 1
                names += got
            break
        return list(dict.fromkeys(names))

    async def _check_conflicts(self, write: _Write) -> None:
        """Before adding a row, read what it could clash with: every list or schedule tool the
        new row's own arguments (its owner, the doctor and the day) are enough to call."""
        calls = 0
        for name, tool in self.tools.items():
            if (
                calls >= 2
                or name == write.tool
                or name.startswith(("get_", "search_", "count_"))
                or self._is_write(name)
            ):
                continue
            required = tool.input_schema.get("required", [])
            if not required or not all(r in write.args for r in required):
                continue
            await self.call_tool(name, {r: write.args[r] for r in required})
            calls += 1

    def _owned(self, table: str) -> bool:
        return self.rules is not None and len(self.rules.rules(table).owner) == 1

    async def _linked_names(
        self, table: str, row: dict[str, Any], budget: int = 2, *, skip: str | None = None, fresh: bool = False
    ) -> list[str]:
        """The names of the public rows ``row`` points at (the doctor of an appointment): how a row is described."""
        names = []
        for col, value in row.items():
            if budget <= 0 or not col.endswith("_id") or value is None or self._is_key(table, col):
                continue
            target = self._table_for_key(col)
            if target is None or target == skip or self.rules is None or not self.rules.rules(target).public:
                continue
            found = await self._fetch(target, value, fresh=fresh)
            budget -= 1
            name = self._name_of(found) if found else None
            if name:
                names.append(name)
        return names

    async def _fetch(self, table: str, value: Any, *, fresh: bool = False) -> dict[str, Any] | None:
        get = self._get_tool(table)
        if get is None:
            return None
        for mem in [] if fresh else self.memory.values():
            for row in mem.rows:
                if mem.table == table and row.get(get[1]) == value:
                    return row
        result = await self.call_tool(get[0], {get[1]: value})
        if result.is_error:
            return None
        rows = rows_of(_structured(result, _text(result)))
        if rows:
            self.memory[f"{table}:{value}"] = _Memory(get[0], {get[1]: value}, rows, table, [])
        return rows[0] if rows else None

    def _ask_confirmation(self, t: _Turn) -> None:
        parts = []
        for write in self.confirming:
            write.text, write.plain = self._restate(write)
            if write.names:
                listed = join(list(dict.fromkeys(write.names)))
                write.text += self.say.pick(
                    (" ({n})", " ({n})", " — the one for {n}", " (for {n})", " — it's for {n}")
                ).format(n=listed)
                write.plain += f" ({listed})"
            parts.append(write.text)
            t.acts.append(Confirm(step=write.step, tool=write.tool, args=dict(write.args)))
        asked = self._ask_directly(parts[0]) if len(parts) == 1 else ""
        t.lines.append(asked or self.say.confirm(" ".join(cap(p) + "." for p in parts)))
        t.asked = True

    def _ask_directly(self, restated: str) -> str:
        """Now and then a plain "I'll ..." restatement is asked as one question instead, with no
        lead-in or tail around it ("Shall I set the status of your hold to ready?")."""
        body = next((restated[len(lead) + 1 :] for lead in _LEADS_LONGEST if restated.startswith(lead + " ")), "")
        if not body or self.say.rng.random() >= 0.45:
            return ""
        return cap(self.say.pick(_ASK_DIRECT).format(b=body, B=cap(body)))

    async def _run_writes(self, t: _Turn) -> None:
        todo, self.confirming = self.confirming, []
        for write in todo:
            refusal = await self._recheck(write)
            if refusal:
                self._refuse(write.step, refusal, t)
                continue
            self.sent[write.step] = dict(write.args)
            result = await self.call_tool(write.tool, write.args)
            text = _text(result)
            write_rule = self._rule(write.tool)
            table = write_rule.table if write_rule else self._table(write.tool)
            if result.is_error:
                self.failed[write.step] = write
                t.acts.append(Report(step=write.step, tool=write.tool, ok=False, error=_code(text)))
                t.lines.append(self.say.error(self._explain(write.tool, write.args, text)))
                t.asked = True
                continue
            rows = rows_of(_structured(result, text))
            row = rows[0] if rows else {}
            self.memory[write.step] = _Memory(write.tool, write.args, rows, table, write.report)
            if table:
                self.writes[write.step] = (table, row)
            gone = (
                write.tool.startswith("delete_")
                or (self._rule(write.tool) or ToolRule(table="", action="")).action == "delete"
            )
            fresh = None if gone else await self._read_back(table, row)
            shown = {k: (fresh or row).get(k) for k in write.report if k in (fresh or row)}
            t.acts.append(Report(step=write.step, tool=write.tool, ok=True, values=shown))
            facts = join([self._field(k, v) for k, v in shown.items()])
            line = _past(write.plain or write.text, self.say.pick(("I have ", "I've ")))
            roll = self.rng.random()
            if facts and roll < 0.4:  # the change was just read back: no need to repeat it all
                t.lines.append(" ".join(w for w in (self.say.done(), self.say.pick(_NOW), facts) if w) + ".")
            elif roll < 0.65:
                t.lines.append(f"{self.say.done()} {line}" + (f" — {facts}." if facts else "."))
            else:  # the user has just agreed to it: said briefly
                short = self._done_briefly(write, table, gone)
                t.lines.append(f"{self.say.done()} {short}" + (f" — {facts}." if facts else "."))
            self.recap = cap(line) + "."

    async def _recheck(self, write: _Write) -> str:
        """Re-read the row a write changes (or the public rows it uses) right before writing: the
        state may have moved since the restatement. Returns the rule now broken, if any."""
        rule = self._rule(write.tool)
        table = rule.table if rule else self._table(write.tool)
        if rule is None or table is None:
            return ""
        if rule.action in {"update", "delete"}:
            row = self._row_with(table, rule.key, write.args.get(rule.key)) if rule.key else None
            row = row or self._row_by_pk(table, write.args)
            get = self._get_tool(table)
            if row is None or get is None or row.get(get[1]) is None:
                return ""
            result = await self.call_tool(get[0], {get[1]: row[get[1]]})
            if not result.is_error:
                fresh = rows_of(_structured(result, _text(result)))
                if fresh:
                    self.memory[f"recheck:{write.step}"] = _Memory(get[0], {get[1]: row[get[1]]}, fresh, table, [])
            return self._policy_refusal(write.tool, write.args)
        for col, value in write.args.items():
            target = self._table_for_key(col) if col.endswith("_id") else None
            if target is not None and self.rules is not None and self.rules.rules(target).public:
                get = self._get_tool(target)
                if get is not None:
                    await self.call_tool(get[0], {get[1]: value})
                break
        return ""

    async def _read_back(self, table: str | None, row: dict[str, Any]) -> dict[str, Any] | None:
        """Re-read a written row, so the answer shows what the database now holds."""
        get = self._get_tool(table) if table else None
        if get is None:
            return None
        name, key = get
        if row.get(key) is None:
            return None
        result = await self.call_tool(name, {key: row[key]})
        if result.is_error:
            return None
        rows = rows_of(_structured(result, _text(result)))
        return rows[0] if rows else None

    def _restate(self, write: _Write) -> tuple[str, str]:
        """The restatement of ``write`` (in one of several shapes) and its plain "I'll ..." form."""
        rule = self._rule(write.tool)
        table = rule.table if rule else self._table(write.tool)
        thing = entity(table) if table else "record"
        lead = self._lead()
        if rule is not None and rule.action == "update" and rule.key:
            row = self._row_with(table, rule.key, write.args.get(rule.key or "")) if table else None
            what = self._thing(table, row) if row else f"{thing} {write.args.get(rule.key or '', '')}".strip()
            verb = write.tool.split("_", 1)[0]
            plain = f"{lead} {verb} {what}"
            return self._shape(plain, (f"{what} would be {_participle(verb)}", f"that means I'll {verb} {what}")), plain
        if rule is not None and rule.action == "create" or write.tool.startswith("create_"):
            details = self._describe_args(write.args)
            verb, _, noun = write.tool.partition("_")
            if verb == "create":
                verb = "add"
            noun = (
                noun.replace("_", " ") if noun and self.rules is not None and write.tool in self.rules.tools else thing
            )
            if verb == "add" and self.say.rng.random() < 0.4:
                verb = self.say.pick(("create", "set up"))
            plain = f"{lead} {verb} {a(noun)} {details}".rstrip()
            if self.rules is not None and write.tool in self.rules.tools:  # book a flight: not "a new flight"
                shapes: tuple[str, ...] = (
                    f"you'd like to {verb} {a(noun)} {details}",
                    f"{a(noun)} {details} — that's what I'd {verb}",
                )
            else:
                new = a(f"new {noun}")
                shapes = (
                    f"that's {new} {details}",
                    f"you'd like {new} {details}",
                    f"I've prepared {new} to {verb}, {details}",
                    f"{new} {details} — that's what I'd {verb}",
                )
                if details.startswith("for "):
                    shapes += (f"the new {noun} would be {details}",)
            return self._shape(plain, shapes), plain
        if write.tool.startswith("delete_"):
            row = self._row_by_pk(table, write.args)
            verb = self.say.pick(("remove", "delete", "remove"))
            what = self._thing(table, row) if row else "that " + thing
            plain = f"{lead} {verb} {what}"
            return self._shape(
                plain, (f"{what} would be {_participle(verb)}", f"that means {verb[:-1]}ing {what}")
            ), plain
        row = self._row_by_pk(table, write.args)
        what = self._thing(table, row) if row else "that " + thing
        verb = self.say.pick(("change", "change", "update", "set", "switch", "move"))

        def of(k: str) -> str:
            if what != "your account":
                if len(what.split()) == 2 and self.rng.random() < 0.3:  # "your loan's status"
                    return f"{what}'s {field_name(k)}"
                return self.say.pick(("the {l} of {w}", "the {l} of {w}", "the {l} on {w}")).format(
                    l=field_name(k), w=what
                )
            return self.say.pick(
                ("the {l} of your account", "your {l}", "the {l} on your account", "your account's {l}", "your {l}")
            ).format(l=field_name(k))

        keys = [k for k in write.args if not self._is_key(table, k)]
        if verb in {"set"}:
            changes = [
                f"{of(k)} to {self._said(write.args[k], k)}"
                + (f" rather than {self._said(row.get(k), k)}" if row and k in row else "")
                for k in keys
            ]
        else:
            changes = [
                f"{of(k)} from {self._said(row.get(k), k)} to {self._said(write.args[k], k)}"
                if row and k in row
                else f"{of(k)} to {self._said(write.args[k], k)}"
                for k in keys
            ]
        plain = f"{lead} {verb} {join(changes)}"
        if len(keys) == 1 and row and keys[0] in row:
            k = keys[0]
            old, new = self._said(row.get(k), k), self._said(write.args[k], k)
            shapes = (
                f"{of(k)} would go from {old} to {new}",
                f"{of(k)} changes from {old} to {new}",
                f"the new {field_name(k)} of {what} would be {new}, instead of {old}",
                f"{of(k)} becomes {new} (it's {old} now)",
            )
            if what == "your account":
                shapes = shapes[:2]
            return self._shape(plain, shapes), plain
        return plain, plain

    def _shape(self, plain: str, others: tuple[str, ...]) -> str:
        """The plain "I'll ..." restatement, or now and then one of its other shapes."""
        return plain if self.rng.random() < 0.45 else self.say.pick(others)

    def _done_briefly(self, write: _Write, table: str | None, gone: bool) -> str:
        """A done line that does not repeat what the user has just agreed to."""
        rule = self._rule(write.tool)
        noun = entity(table) if table else "record"
        if gone:
            bank: tuple[str, ...] = (
                "the {n} is gone",
                "it's been removed",
                "that {n} is off your account",
                "the {n} no longer shows",
            )
        elif rule is not None and rule.action == "create" or write.tool.startswith("create_"):
            bank = (
                "your new {n} is in",
                "the new {n} is on your account",
                "your {n} has been added",
                "the new {n} is saved",
                "the {n} is in the system now",
                "it's on your account now",
                "the {n} has gone in",
                "I've saved the new {n}",
                "your {n} is set up",
                "the new {n} is there now",
            )
        else:
            bank = (
                "the change is saved",
                "your {n} is updated",
                "that's updated",
                "the new details are saved",
                "I've saved the change",
                "the {n} shows the change now",
                "it's changed",
                "the update has gone through",
            )
        return self.say.pick(bank).format(n=noun)

    def _said(self, value: Any, column: str = "") -> str:
        """A value in a restatement: a date the way the user wrote it ("3 May" when they left the year out)."""
        shown = self._value(value, column)
        words = shown.split(" ")
        if isinstance(value, str) and len(value) >= 10 and value[4:5] == "-" and len(words) in (3, 4):
            weekday = words[0] + " " if len(words) == 4 else ""
            day, month, year = words[-3:]
            full = f"{day} {month} {year}".lower()
            if year.isdigit() and f"{day} {month}".lower() in self.heard and full not in self.heard:
                said = f"{month} {day}" if f"{month} {day}".lower() in self.heard else f"{day} {month}"
                return weekday + said
        return shown

    def _lead(self) -> str:
        return self.say.pick(_LEADS)

    def _describe_args(self, args: dict[str, Any]) -> str:
        names, when, rest = [], [], []
        me = self._get_tool(self.rules.user_table) if self.rules else None
        for k, v in args.items():
            if k in _CONTROL or (me is not None and k == me[1]):
                continue
            if k.endswith("_id"):
                row = self._row_by_pk(self._table_for_key(k), {k: v})
                name = self._name_of(row) if row else None
                if name:
                    names.append(f"for {named(entity(self._table_for_key(k) or k.removesuffix('_id')), name)}")
                continue
            if k == "card_last4":
                rest.append(f"paid with the card ending in {v}")
            elif k in {"date", "day"} or k.endswith("_date"):
                when.append(f"on {self._said(v, k)}")
            elif k == "time":
                when.append(f"at {v}")
            elif k in {"quantity", "seats", "rooms"} and isinstance(v, int):
                noun = ("unit" if v == 1 else "units") if k == "quantity" else (k[:-1] if v == 1 else k)
                rest.append(f"{v} {noun}")
            elif k == "reason":
                rest.append(f"for {self._value(v, k)}")
            else:
                rest.append(self._with(k, v))
        return " ".join([*names, *when, join(rest)]).strip()

    def _with(self, column: str, value: Any) -> str:
        """One argument of a new row, in words: ``due on 7 March``, ``with the status active``."""
        name, v = label(column), self._said(value, column)
        low = column.lower()
        if low.endswith(("_on", "_at")):
            # "borrowed on 3 May", "due on 7 June" (or "with the due date 7 June"): the label is a verb phrase.
            verb = name.rsplit(" ", 1)[0]
            frames = ["{n} {v}", "{n} {v}", "{b} {v}"]
            if not low.split("_", 1)[0].endswith("ed"):
                frames += ["with the {f} {v}", "{b} by {v}"] if low.endswith("_on") else ["with the {f} {v}"]
            return self.say.pick(frames).format(n=name, v=v, f=field_name(column), b=verb)
        if low == "status" or low.endswith("_status"):
            return self.say.pick(
                (
                    "with the status {v}",
                    "marked {v}",
                    "marked as {v}",
                    "with status {v}",
                    "in the {v} state",
                    "set to {v}",
                    "as {v}",
                    "status {v}",
                )
            ).format(v=v)
        return self.say.pick(
            (
                "with {n} {v}",
                "with the {n} {v}",
                "with the {n} set to {v}",
                "with {v} as the {n}",
                "where the {n} is {v}",
            )
        ).format(n=name, v=v)

    # ------------------------------------------------------------------ the rules
    def _policy_refusal(self, tool: str, args: dict[str, Any]) -> str:
        """Why the rules forbid this write ("" when they allow it)."""
        policy = self.rules
        if policy is None:
            return ""
        rule = self._rule(tool)
        if rule is None:
            return ""
        table = rule.table
        rules = policy.rules(table)
        thing = entity(table)
        if rules.public or (table != policy.user_table and not rules.owner):
            return self.say.pick(
                (
                    "{T} are not something I can change for you.",
                    "{T} are read-only for me, so I can't change them.",
                    "changing {t} isn't something I'm able to do for you.",
                    "I have no way to change {t} for you.",
                )
            ).format(t=plural(thing), T=plural(thing))
        if rule.action == "delete":
            if not rules.delete:
                return f"{plural(thing)} can't be deleted — they stay on file."
            return ""
        if rule.action == "create":
            for col, allowed in rules.initial.items():
                if col in args and args[col] not in allowed:
                    return f"a new {thing} can't start as {self._value(args[col], col)}."
            return "" if rules.create or table == policy.user_table else f"I can't add {plural(thing)}."
        row = self._row_with(table, rule.key, args.get(rule.key or "")) if rule.key else None
        if row is None:
            row = self._row_by_pk(table, args)
        if row is not None:
            foreign = self._not_theirs(table, [row])
            if foreign:
                return foreign
        sets = dict(rule.sets) or {k: v for k, v in args.items() if not self._is_key(table, k) and k not in _CONTROL}
        schema = self.tools[tool].input_schema.get("properties", {}) if tool in self.tools else {}
        described = self._thing(table, row) if row else f"that {thing}"
        for col, new in sets.items():
            enum = schema.get(col, {}).get("enum") if isinstance(schema.get(col), dict) else None
            if enum and new not in enum:
                options = join([self._value(v, col) for v in enum if v is not None], "or")
                return self.say.pick(
                    (
                        "{v} isn't a {l} we have — the options are {o}.",
                        "there's no {l} called {v}; it can be {o}.",
                        "{v} isn't one of the {l} options — those are {o}.",
                        "the {l} can only be {o}, not {v}.",
                    )
                ).format(v=self._value(new, col), l=label(col), o=options)
            if col not in rules.editable:
                return self.say.pick(
                    (
                        "the {l} isn't something I can change for you.",
                        "I can't change the {l} for you.",
                        "the {l} isn't open to changes from my side.",
                    )
                ).format(l=label(col))
            if row is None:
                continue
            for other, values in rules.editable_when.get(col, {}).items():
                if row.get(other) not in values:
                    state = self._value(row.get(other), other)
                    return f"{described} is {state}, so its {label(col)} can't be changed any more."
            moves = rules.transitions.get(col)
            if moves is not None and new not in moves.get(str(row.get(col)), []):
                now = self._value(row.get(col), col)
                if rule.sets:
                    return f"{described} is {now}, so it can't be {_participle(tool.split('_', 1)[0])} any more."
                return self.say.pick(
                    (
                        "{d} is {n}, and {a} that is {n} can't become {v}.",
                        "{d} is already {n}, and {a} can't go from {n} to {v}.",
                        "once {a} is {n}, it can't be {v} — and {d} is {n}.",
                    )
                ).format(d=described, n=now, a=a(thing), v=self._value(new, col))
        return ""

    def _not_theirs(self, table: str | None, rows: list[dict[str, Any]]) -> str:
        policy = self.rules
        if policy is None or table is None or self.me is None or not rows:
            return ""
        owner = policy.rules(table).owner
        if len(owner) != 1:
            return ""
        me = self._my_pk()
        if me is None:
            return ""
        theirs = [r for r in rows if owner[0] in r and r.get(owner[0]) != me]
        if theirs and len(theirs) == len(rows):
            name = self._name_of(theirs[0])
            what = f"{entity(table)} {name}" if name else f"that {entity(table)}"
            return self.say.pick(
                (
                    "{w} isn't on your account, so I can't share or change anything about it.",
                    "{w} belongs to another account, so I can't share it or change it.",
                    "{w} isn't yours, so I'm not able to share or change it.",
                )
            ).format(w=what)
        return ""

    def _identify(self, table: str | None, args: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        policy = self.rules
        if policy is None or table != policy.user_table or len(rows) != 1:
            return
        if any(k in policy.identify_by for k in args):
            self.me = rows[0]

    def _my_pk(self) -> Any:
        if self.me is None or self.rules is None:
            return None
        get = self._get_tool(self.rules.user_table)
        return self.me.get(get[1]) if get else None

    # ------------------------------------------------------------------ words
    def _describe(
        self,
        tool: str,
        table: str | None,
        structured: Any,
        rows: list[dict[str, Any]],
        report: list[str],
        args: dict[str, Any] | None = None,
    ) -> str:
        args = args or {}
        thing = entity(table) if table else "record"
        if tool.startswith("count_") and rows and "count" in rows[0]:
            n = rows[0]["count"]
            extra = [self._field(k, rows[0].get(k)) for k in report if k != "count" and k in rows[0]]
            what = join([self._value(v, k) for k, v in args.items() if k not in _CONTROL and not k.endswith("_id")])
            things = plural(thing) if n != 1 else thing
            # "You have", "on your account": only when the count is of the user's own rows.
            mine = self._theirs(table, [], args)
            if n == 0 and what.startswith("no "):  # "no show": "no no show appointments" would not do
                return self.say.pick(
                    (
                        *(("You don't have any {what} {things}.", "I can't see any {what} {things} on your account.")
                          if mine else ("I can't see any {what} {things}.",)),
                        "There aren't any {what} {things} — none at all.",
                    )
                ).format(what=what, things=things)  # fmt: skip
            if n == 0:
                return (
                    self.say.pick(
                        (
                            *(
                                (
                                    "You have no {what} {things}.",
                                    "There are no {what} {things} on your account.",
                                    "Your account has no {what} {things}.",
                                )
                                if mine
                                else ()
                            ),
                            "I can't see any {what} {things} — none at all.",
                            "None, I'm afraid: there are no {what} {things}.",
                            "I don't see any {what} {things} at all.",
                            "There are no {what} {things} at the moment.",
                            "Nothing shows up: no {what} {things}.",
                        )
                    )
                    .format(what=what, things=things)
                    .replace("  ", " ")
                )
            text = (
                self.say.pick(
                    (
                        *(
                            (
                                "You have {n} {what} {things}.",
                                "There are {n} {what} {things} on your account.",
                                "Your account has {n} {what} {things}.",
                                "On your account: {n} {what} {things}.",
                            )
                            if mine
                            else ()
                        ),
                        "I count {n} {what} {things}.",
                        "That comes to {n} {what} {things}.",
                        "The system shows {n} {what} {things}.",
                        "I can see {n} {what} {things}.",
                        "The count is {n} {what} {things}.",
                        "Altogether there are {n} {what} {things}.",
                        "I make it {n} {what} {things}.",
                        "Looks like {n} {what} {things}.",
                        "By my count, {n} {what} {things}.",
                        "I've counted {n} {what} {things}.",
                        "The total is {n} {what} {things}.",
                        "Adding them up, {n} {what} {things}.",
                        "I get {n} {what} {things}.",
                        "That's {n} {what} {things} in all.",
                    )
                )
                .format(n=n, what=what, things=things)
                .replace("  ", " ")
                .replace("There are 1 ", "There is 1 ")
                .replace("there are 1 ", "there is 1 ")
            )
            return text + (f" Together, {join(extra)}." if extra else "")
        if tool.startswith("list_") and isinstance(structured, dict) and "rows" in structured and not report:
            if not rows:
                return self.say.found_none(thing)
            return self.say.found_many(thing, len(rows), mine=self._theirs(table, rows, args))
        if not report:
            if self.rules is not None and table == self.rules.user_table and rows:
                return self.say.pick(
                    (
                        "Thanks, I've found your account.", "Thank you, I have your account here.", "Got your account.",
                        "Thanks — I can see your account now.", "I've pulled up your account.", "Found you, thanks.",
                        "Thanks, that matches your account.", "All right, I have your details.",
                        "Your account is open in front of me.", "Thanks, that's you found.",
                        "Right, I've located your account.", "Thanks — that's your account.", "I have you now, thanks.",
                        "Account found — thank you.", "Thanks, I've got you on the system.",
                        "Lovely, that's found you.",
                        "Thanks, you're verified.", "Perfect, I've matched you.", "Great, I've confirmed who you are.",
                        "That's you — thanks.", "OK, I've brought up your details.", "Thanks, the details match.",
                        "Good, I've verified you.", "Thanks for that; you're in the system.",
                        "That's your account — thank you.", "Great, your account's up.", "Thanks, I have you.",
                        "Right, that's you.", "Lovely, I've got your record.", "Brilliant, you're found.",
                        "OK, your details are on screen.", "Thank you — you're all checked.",
                        "That checks out, thanks.",
                        "Cheers, I've found you.", "Perfect, your account's here.", "Ah, there you are.",
                        "I've got your record up now.", "Thanks, you're identified.", "Great, that's matched.",
                        "Thanks — I've got you.", "Right, I can see your account.", "That's found your record, thanks.",
                        "OK, you're on the system.", "Thank you, that's your account up.",
                        "Found your details, thanks.", "Yes, that's you on the system.", "Thanks, everything matches.",
                        "I've located you — thank you.", "Thanks, I have your record open.", "Super, found you.",
                        "That matches, thanks.", "Great, you're on screen now.", "OK, I've identified you.",
                        "Thanks — your details are up.", "Lovely, that's your record.", "There you are, thanks.",
                        "Got you, thank you.", "Thanks, you're all verified.",
                        "", "", "", "", "", "", "", "", "",
                    )
                )  # fmt: skip
            return ""
        many = isinstance(structured, dict) and "rows" in structured
        if many and not rows:
            return self.say.found_none(thing)
        if many and (len(rows) > 1 or tool.startswith("list_")):
            names = [n for n in (self._name_of(r, report) for r in rows[:_NAMED]) if n]
            head = self.say.found_many(thing, len(rows), mine=self._theirs(table, rows, args))
            details = [
                join([self._field(k, r.get(k)) for k in report if k in r and k not in self._naming(r)])
                for r in rows[:3]
            ]
            if len(rows) == 1 and details[0] and not names:  # the one fine on a loan: no "first one"
                return self.say.pick(
                    (
                        "There is one {t}: {d}.",
                        "I can see one {t} — {d}.",
                        "Just the one {t}: {d}.",
                        "There's a single {t}, and {d}.",
                        "I found one {t}; {d}.",
                        "It has one {t}: {d}.",
                    )
                ).format(t=thing, d=details[0])
            body = ""
            if names and len(rows) > _NAMED:  # only some of them named: never as if it were all
                body = " " + self.say.pick(
                    (
                        "The first {k} are {n}.",
                        "The first {k}: {n}.",
                        "Here are the first {k}: {n}.",
                        "Starting from the top: {n}, and {m} more.",
                        "Among them: {n}, and {m} more.",
                        "The top {k} are {n}.",
                        "The first {k} on the list: {n}.",
                    )
                ).format(
                    n=join([_counted(n, k, self.say) for n, k in Counter(names).items()]),
                    k=_NAMED,
                    m=len(rows) - _NAMED,
                )
            elif names:
                body = " " + self.say.pick(
                    (
                        "They are: {n}.",
                        "In order: {n}.",
                        "Here they are: {n}.",
                        "The list: {n}.",
                        "They're {n}.",
                        "Those are {n}.",
                        "That's {n}.",
                        "By name: {n}.",
                        "Namely {n}.",
                        "Here's the list: {n}.",
                        "They come up as {n}.",
                        "Listed, they are {n}.",
                        "I have {n}.",
                        "Those would be {n}.",
                        "The names are {n}.",
                        "Going down the list: {n}.",
                        "These: {n}.",
                    )
                ).format(n=join([_counted(n, k, self.say) for n, k in Counter(names).items()]))
            if any(details):
                if details[0]:
                    body += " " + self.say.pick(
                        (
                            "The first one: {d}.",
                            "For the first, {d}.",
                            "On the first one, {d}.",
                            "The top one: {d}.",
                            "For the one at the top, {d}.",
                            "Taking the first, {d}.",
                            "As for the first of them, {d}.",
                            "First on the list: {d}.",
                        )
                    ).format(d=details[0])
            return head + body
        row = rows[0] if rows else {}
        subject = self._thing(table, row) if table else "it"
        if self.about:
            subject += f" ({join(self.about)})"
            self.about = []
        named = self._name_of(row)
        facts = [self._field(k, row.get(k)) for k in report if k in row and not (named and row.get(k) == named)]
        if not facts:
            return cap(f"that is {subject.removeprefix('the ')}.") if named else ""
        return cap(
            self.say.pick(
                (
                    "For {s}, {f}.",
                    "Here's what I see for {s}: {f}.",
                    "{S}: {f}.",
                    "I've looked up {s} — {f}.",
                    "On {s}, {f}.",
                    "According to the system, for {s} {f}.",
                    "I've checked {s}, and {f}.",
                    "Looking at {s}, {f}.",
                    "The record for {s} says {f}.",
                    "As for {s}, {f}.",
                    "From what I can see on {s}, {f}.",
                    "Checking {s} now: {f}.",
                    "{S} — {f}.",
                    "I have {s} here: {f}.",
                    "In the system, for {s}, {f}.",
                    "Right, {s}: {f}.",
                    "I've got {s} up: {f}.",
                    "Pulling up {s}: {f}.",
                    "So, {s}: {f}.",
                    "Let me see — for {s}, {f}.",
                    "Having looked at {s}, {f}.",
                    "On file for {s}, {f}.",
                    "Here's {s}: {f}.",
                    "I can tell you that for {s}, {f}.",
                    "Found it — for {s}, {f}.",
                    "{S} is in front of me: {f}.",
                    "With {s}, {f}.",
                    "Regarding {s}, {f}.",
                    "About {s}: {f}.",
                    "I've opened {s}; {f}.",
                    "Taking {s}, {f}.",
                    "The details of {s}: {f}.",
                    "I've had a look at {s}: {f}.",
                    "So for {s}, {f}.",
                    "For {s}, I can tell you {f}.",
                    "On our records for {s}, {f}.",
                    "Checking {s}, I see {f}.",
                    "{S} is on screen, and {f}.",
                    "My screen shows {s}: {f}.",
                    "Here you go — for {s}, {f}.",
                    "I looked up {s}: {f}.",
                    "All right, {s}: {f}.",
                    "I've got the record for {s}; {f}.",
                )
            ).format(s=subject, S=cap(subject), f=join(facts))
        )

    def _field(self, column: str, value: Any) -> str:
        col = column.lower()
        if col.startswith("total_") and col != "total_price":
            noun, unit = total_of(column)
            if unit and isinstance(value, int | float) and not isinstance(value, bool):
                n = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
                if noun:  # "the total duration is 60 minutes"
                    return self.say.pick(("the total {a} is {n} {u}", "the {a} adds up to {n} {u}")).format(
                        a=noun, n=n, u=unit
                    )
                return self.say.pick(("that's {n} {u} in all", "the {u} add up to {n}")).format(n=n, u=unit)
            return f"the total {noun} is {self._value(value, column)}".replace("total total", "total")
        if col.endswith(("_on", "_at")) and isinstance(value, str):
            verb = label(column)[: -len(" on")] if col.endswith("_on") else label(column)[: -len(" at")]
            shown = self._value(value, column)
            prep = "at" if col.endswith("_at") else "on"
            if verb.endswith("s") and " " not in verb:  # opens_at, closes_at, starts_on: a present verb
                return self.say.pick(("it {v} {p} {x}", "it {v} {p} {x}", "{x} is when it {v}")).format(
                    v=verb, p=prep, x=shown
                )
            if not verb.endswith("ed") and " " not in verb:  # due_on: an adjective
                return self.say.pick(("it is {v} {p} {x}", "it's {v} {p} {x}", "the {v} date is {x}")).format(
                    v=verb, p=prep, x=shown
                )
            if not value:
                return f"it has not been {verb} yet"
            return self.say.pick(
                (
                    "it was {v} on {x}",
                    "it was {v} on {x}",
                    "the {v} date is {x}",
                    "it shows as {v} on {x}",
                    "it's down as {v} on {x}",
                    "the date it was {v} is {x}",
                    "it was {v} on {x}, according to the record",
                )
            ).format(v=verb, x=shown)
        name = label(column)
        verb = "are" if _plural_noun(name.rsplit(" ", 1)[-1]) else "is"
        if value is None:
            return f"the {name} {verb} not set"
        shown = self._value(value, column).rstrip(".")
        if verb == "are":
            if isinstance(value, int) and not isinstance(value, bool):
                return self.say.pick(
                    (
                        "the number of {n} is {v}",
                        "the {n} come to {v}",
                        "there are {v} {n}",
                        "it has {v} {n}",
                        "the {n} stand at {v}",
                        "that's {v} {n}",
                    )
                ).format(n=name, v=shown)
            return f"the {name} are {shown}"
        return self.say.pick(
            (
                "the {n} is {v}",
                "the {n} is {v}",
                "the {n} is listed as {v}",
                "the {n} shows {v}",
                "the {n} is recorded as {v}",
                "the {n} comes up as {v}",
                "its {n} is {v}",
                "the {n} on record is {v}",
                "the {n} is down as {v}",
                "the {n} says {v}",
                "the {n} is given as {v}",
                "the {n} reads {v}",
                "{v} is the {n}",
                "the {n} is set to {v}",
                "the {n} on file is {v}",
                "we have {v} as the {n}",
                "the {n} currently reads {v}",
                "it shows {v} for the {n}",
                "the {n} is noted as {v}",
                "I can see {v} as the {n}",
                "the system gives the {n} as {v}",
                "its {n} is listed as {v}",
                "{v} is what it says for the {n}",
                "it's {v} for the {n}",
                "it says {v} under {n}",
                "its {n} reads {v}",
                "its {n} comes up as {v}",
                "{v} is recorded as the {n}",
                "it has the {n} {v}",
            )
        ).format(n=name, v=shown)

    def _value(self, value: Any, column: str = "") -> str:
        return self.say.value(value, column)

    def _naming(self, row: dict[str, Any]) -> list[str]:
        """The column that names ``row``: the first whose name says so and whose value is text."""
        for k, v in row.items():
            if isinstance(v, str) and _names_a_row(k):
                return [k]
        return []

    def _name_of(self, row: dict[str, Any] | None, report: list[str] | None = None) -> str | None:
        if not row:
            return None
        if row.get("first_name") and row.get("last_name") and "name" not in row:
            return f"{row['first_name']} {row['last_name']}"
        for k in self._naming(row):
            if report is None or k in report or not report:
                return str(row[k])
        names = self._naming(row)
        return str(row[names[0]]) if names else None

    def _thing(self, table: str | None, row: dict[str, Any] | None) -> str:
        noun = entity(table) if table else "record"
        if self.rules is not None and table == self.rules.user_table:
            return "your account"
        name = self._name_of(row) if row else None
        mine = row is not None and self.rules is not None and table is not None and self._mine(table, row)
        prefix = "your" if mine else "the"
        if name and not mine and " " in name and name[:1].isupper() and noun.split()[-1] in name.lower():
            return name  # "Riverside Branch", not "the branch Riverside Branch"
        return f"{prefix} {noun} {name}" if name else f"{prefix} {noun}"

    def _theirs(self, table: str | None, rows: list[dict[str, Any]], args: dict[str, Any]) -> bool:
        """Whether what a read found is the user's own: it was filtered by the user's key, or
        every row holds it (not a catalogue, not a search by number that may find anyone's)."""
        if self.rules is None or table is None:
            return False
        me = self._my_pk()
        if table == self.rules.user_table:
            get = self._get_tool(table)
            return me is not None and get is not None and bool(rows) and all(r.get(get[1]) == me for r in rows)
        owner = self.rules.rules(table).owner
        if len(owner) != 1 or me is None:
            return False
        return args.get(owner[0]) == me or (bool(rows) and all(r.get(owner[0]) == me for r in rows))

    def _mine(self, table: str, row: dict[str, Any]) -> bool:
        owner = self.rules.rules(table).owner if self.rules else []
        return len(owner) == 1 and row.get(owner[0]) == self._my_pk() is not None

    def _explain(self, tool: str, args: dict[str, Any], text: str) -> str:
        """A tool error in plain words, with a next step."""
        low = text.lower()
        tool_rule = self._rule(tool)
        table = self._table(tool) or (tool_rule.table if tool_rule else None)
        thing = entity(table) if table else "request"
        if "constraint failed:" in low:
            name = low.split("constraint failed:", 1)[1].strip().split(" ", 1)[0].strip(".")
            if name.startswith("unique") or "." in name:
                column = label(name.split(".")[-1])
                return f"that is already taken (the {column} must be unique). Would you like to try another?"
            rule = _check_rule(text.split("constraint failed:", 1)[1].strip(), args, thing, self.say)
            if rule:
                return f"{rule}. " + self.say.pick(
                    (
                        "Would you like to try a different value?",
                        "Shall we try it with another value?",
                        "Do you want to try something else?",
                        "Would another value work for you?",
                        "What would you like instead?",
                    )
                )
            words = label(name).replace("not enough", "there isn't enough")
            again = self.say.pick(
                (
                    "Would you like to change the numbers and try again?",
                    "Shall we try it with different numbers?",
                    "Do you want to try other values?",
                    "Would different numbers work for you?",
                    "Can we try it another way?",
                )
            )
            return f"the system refused it: {words}. {again}"
        if "unique" in low:
            return "that is already taken. Would you like to try another option?"
        if "not_found" in low or "not found" in low or "no " in low[:60]:
            return f"I couldn't find a matching {thing} that allows this. Could you check the details?"
        return _invalid(text, args).rstrip(".") + self.say.pick(
            (
                " — could you give me a different value?",
                ", so which value would you like instead?",
                "; what should I use instead?",
                " — shall we try another value?",
                ", so could you pick another?",
            )
        )

    # ------------------------------------------------------------------ tools and tables
    def _table_names(self) -> dict[str, str]:
        names: dict[str, str] = {}
        if self.rules is not None:
            for t in [self.rules.user_table, *self.rules.tables]:
                names[t] = t
                names[singular(t)] = t
        return names

    def _table(self, tool: str) -> str | None:
        rule = self.rules.tools.get(tool) if self.rules else None
        if rule is not None:
            return rule.table
        for prefix in ("get_", "search_", "count_", "create_", "update_", "delete_"):
            if tool.startswith(prefix):
                base = tool[len(prefix) :]
                return self._tables.get(base, base)
        if tool.startswith("list_") and "_for_" in tool:
            base = tool[len("list_") :].split("_for_")[0]
            return self._tables.get(base, base)
        return None

    def _rule(self, tool: str) -> ToolRule | None:
        if self.rules is not None and tool in self.rules.tools:
            return self.rules.tools[tool]
        table = self._table(tool)
        for prefix, action in (("create_", "create"), ("update_", "update"), ("delete_", "delete")):
            if tool.startswith(prefix) and table:
                return ToolRule(table=table, action=action)
        return None

    def _is_write(self, tool: str) -> bool:
        t = self.tools.get(tool)
        ann = t.annotations if t else None
        if ann is not None and ann.read_only_hint is not None:
            return not ann.read_only_hint
        return self._rule(tool) is not None

    def _get_tool(self, table: str | None) -> tuple[str, str] | None:
        """The tool that reads one row of ``table`` by its key, and that key's argument."""
        if table is None:
            return None
        if table in self._gets:
            return self._gets[table]
        found = None
        for name in (f"get_{singular(table)}", f"get_{table}"):
            tool = self.tools.get(name)
            if tool is not None:
                required = tool.input_schema.get("required", [])
                if len(required) == 1:
                    found = name, required[0]
                    break
        self._gets[table] = found
        return found

    def _is_key(self, table: str | None, column: str) -> bool:
        get = self._get_tool(table)
        return get is not None and get[1] == column

    def _table_for_key(self, column: str) -> str | None:
        for table in set(self._tables.values()):
            get = self._get_tool(table)
            if get is not None and get[1] == column:
                return table
        return None

    def _row_by_pk(self, table: str | None, args: dict[str, Any]) -> dict[str, Any] | None:
        get = self._get_tool(table)
        if get is None or get[1] not in args:
            return None
        return self._row_with(table, get[1], args[get[1]])

    def _row_with(self, table: str | None, column: str | None, value: Any) -> dict[str, Any] | None:
        if table is None or column is None or value is None:
            return None
        # A row of the table itself first: a booking also has a flight_id, but it is not the flight.
        for exact in (True, False):
            for mem in reversed(list(self.memory.values())):
                if exact and mem.table != table:
                    continue
                for row in mem.rows:
                    if row.get(column) == value:
                        return row
        return None


def _invalid(text: str, args: dict[str, Any]) -> str:
    """``Error (invalid_arguments): quantity: expected a number <= 20, got 22`` in words."""
    body = text.split("):", 1)[-1].strip()
    field_, _, problem = body.partition(":")
    field_ = field_.strip()
    problem = problem.strip()
    got = args.get(field_)
    shown = format_value(got, field_) if got is not None else "that"
    if "<=" in problem:
        limit = problem.split("<=", 1)[1].split(",", 1)[0].strip()
        return f"the {label(field_)} can be at most {limit}, so {shown} isn't possible."
    if ">=" in problem:
        limit = problem.split(">=", 1)[1].split(",", 1)[0].strip()
        return f"the {label(field_)} must be at least {limit}, so {shown} isn't possible."
    if "pattern" in problem or "format" in problem:
        return f"{shown} isn't a valid {label(field_)} — it isn't in the form the system accepts."
    if "one of" in problem:
        return f"{shown} isn't one of the allowed values for the {label(field_)}."
    return f"the system didn't accept the {label(field_) or 'request'}: it isn't valid ({problem.rstrip('.')})."


def _plural_noun(word: str) -> bool:
    from simulator.offline._inflect import engine

    return (
        word.endswith("s")
        and word not in {"status", "address", "is", "was", "class"}
        and bool(engine().singular_noun(word))
    )


def _participle(verb: str) -> str:
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("l") and not verb.endswith("ll"):
        return verb + "led"
    return verb + "ed"


def _counted_names(n: int, noun: str, table: str, names: list[str], say: Phrasing) -> str:
    """The rows counted and what they are for, in one sentence: "Your 4 loans are for A (twice) and B."."""
    listed = join([_counted(name, k, say) for name, k in Counter(names).items()])
    return say.pick(
        (
            "Your {n} {r} are for {l}.",
            "You have {n} {r}, for {l}.",
            "I can see {n} {r}, and they go with {l}.",
            "The {n} {r} on your account cover {l}.",
            "Across your {n} {r}, the {t} are {l}.",
            "{n} {r} come up — their {t} are {l}.",
            "There are {n} {r}, linked to {l}.",
            "I've found {n} {r}; the {t} are {l}.",
        )
    ).format(n=n, r=plural(noun), t=plural(entity(table)), l=listed)


def _names_line(table: str, names: list[str], say: Phrasing) -> str:
    things = plural(entity(table)) if len(names) != 1 else entity(table)
    counts = dict(Counter(names))
    if len(names) > 1 and len(counts) == 1:  # the same name for every row: said once
        return (
            say.pick(
                (
                    "All {c} are for {n}.",
                    "Every one of them is for {n}.",
                    "All {c} of them: {n}.",
                    "They're all for {n}.",
                    "Each of them is for {n}.",
                    "The {t} is the same for all {c}: {n}.",
                    "All {c} go with {n}.",
                    "It's {n} for every one of them.",
                )
            )
            .format(t=entity(table), c=_words(len(names)), n=names[0])
            .replace("all two", "both")
            .replace("All two", "Both")
        )
    if len(names) > 1:
        listed = join([_counted(n, k, say) for n, k in counts.items()])
        return say.pick(
            (
                "The {t}: {n}.",
                "The {t} are {n}.",
                "Those are for {n}.",
                "By {t}, that's {n}.",
                "They're for {n}.",
                "The {t} on them: {n}.",
                "In terms of {t}, we have {n}.",
                "Between them, the {t} are {n}.",
                "They cover {n}.",
                "Looking at the {t}, there's {n}.",
                "As for {t}: {n}.",
                "They go with {n}.",
                "{T}: {n}.",
                "They're linked to {n}.",
                "Going through them, I see {n}.",
                "Their {t} are {n}.",
                "One by one, the {t} are {n}.",
                "The {t} behind them are {n}.",
                "They're linked to these {t}: {n}.",
                "The {t} for them are {n}.",
                "For {t}, I have {n}.",
                "Those come from {n}.",
                "Taking them in turn: {n}.",
                "They relate to {n}.",
                "That covers {n}.",
                "The {t} listed are {n}.",
                "Between them they cover {n}.",
                "They're for {n}, in that order.",
                "The {t} are: {n}.",
                "Each one goes with {n}.",
                "I can see {n}.",
                "They point to {n}.",
                "These are for {n}.",
                "The {t} come out as {n}.",
                "Listing the {t}: {n}.",
                "They're tied to {n}.",
                "Here are the {t}: {n}.",
                "The matching {t} are {n}.",
                "They belong to {n}.",
                "That gives {n}.",
            )
        ).format(t=things, T=cap(things), n=listed)
    name = names[0]
    the = "" if name.lower().startswith(("the ", "a ", "an ")) else "the "
    return say.pick(
        (
            "It is {w}{n}.",
            "That's {w}{n}.",
            "It's for {w}{n}.",
            "The {t} is {w}{n}.",
            "It goes with {w}{n}.",
            "It's linked to {w}{n}.",
            "That one is {w}{n}.",
            "The {t} on it is {w}{n}.",
            "It's {w}{n}, as it happens.",
            "The answer is {w}{n}.",
            "It's with {w}{n}.",
            "That's for {w}{n}.",
            "The {t} there is {w}{n}.",
            "It belongs with {w}{n}.",
            "It's {w}{n}, according to the record.",
        )
    ).format(w=the, n=name, t=things)


_NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven")


def _words(n: int) -> str:
    return _NUMBER_WORDS[n] if 0 <= n < len(_NUMBER_WORDS) else str(n)


#: How many rows of a list the agent names; with more, it says they are the first of them.
_NAMED = 5


def _counted(name: str, k: int, say: Phrasing) -> str:
    """A name with how many rows have it: ``Central Library (twice)``."""
    if k == 1:
        return name
    times = "twice" if k == 2 else f"{_words(k)} times"
    return say.pick(("{n} ({x})", "{n} {x}")).format(n=name, x=times)


def _past(text: str, have: str = "I have ") -> str:
    """``I will cancel your order`` -> ``I have cancelled your order``: the restatement, done."""
    out = text
    for lead in sorted(_LEADS, key=len, reverse=True):  # "I'm about to go ahead and" before "I'm about to"
        if out.startswith(lead + " "):
            out = have + out[len(lead) + 1 :]
            break
    out = out.replace("I've ", "I have ", 1) if have == "I have " else out.replace("I have ", "I've ", 1)
    for verb, done in (
        ("have cancel ", "have cancelled "),
        ("have book ", "have booked "),
        ("have place ", "have placed "),
        ("have change ", "have changed "),
        ("have add ", "have added "),
        ("have remove ", "have removed "),
        ("have request ", "have requested "),
        ("have refill ", "have refilled "),
        ("have reschedule ", "have rescheduled "),
        ("have update ", "have updated "),
        ("have move ", "have moved "),
        ("have switch ", "have switched "),
        ("have create ", "have created "),
        ("have set up ", "have set up "),
        ("have open ", "have opened "),
        ("have delete ", "have deleted "),
        ("have take ", "have taken "),
    ):
        out = out.replace(verb, done, 1).replace(verb.replace("have ", "'ve "), done.replace("have ", "'ve "), 1)
    return out


#: Before the values a write left, when the done line does not repeat the restatement.
_NOW = (
    "now",
    "as of now,",
    "from now on,",
    "in the system now,",
    "checking it again,",
    "reading it back,",
    "",
    "looking at it now,",
    "on a fresh read,",
    "to confirm,",
    "straight after, in the record,",
    "I've re-read it:",
    "on a quick re-check,",
    "as it stands now,",
    "just checked:",
    "fresh from the system,",
    "on the record now,",
    "I looked again:",
    "going by the system,",
    "confirmed:",
    "checked again,",
)
_LEADS = (
    "I will",
    "I'm going to",
    "I'd",
    "the plan is to",
    "I'll go ahead and",
    "I'll",
    "my plan is to",
    "I can",
    "I'm about to",
    "what I'll do is",
    "the idea is to",
    "I'm ready to",
    "the next step would be to",
    "what I'd do now is",
    "I'm all set to",
    "I'd now",
    "I'm lined up to",
    "all that's left is to",
    "I'm about to go ahead and",
    "the change I'd make is to",
    "I'm set to",
    "I'm going to go ahead and",
    "I'll now",
    "what I'm going to do is",
    "I'd like to",
    "the plan would be to",
    "next, I'd",
    "I'm planning to",
    "I propose to",
    "I'd go ahead and",
    "I'm ready to go ahead and",
    "the idea would be to",
    "what I'd do is",
)

_LEADS_LONGEST = tuple(sorted(_LEADS, key=len, reverse=True))
#: A restatement asked as a single question ({b}: what would be done, from its verb on).
_ASK_DIRECT = (
    "Shall I {b}?",
    "Would you like me to {b}?",
    "Do you want me to {b}?",
    "Can I go ahead and {b}?",
    "Is it OK to {b}?",
    "Are you happy for me to {b}?",
    "Should I {b}?",
    "May I {b}?",
    "OK to {b}?",
    "Just to check, shall I {b}?",
    "So, should I {b}?",
    "Right — do you want me to {b}?",
    "Before I do anything: shall I {b}?",
    "{B} — is that what you want me to do?",
    "{B}: is that right?",
    "You'd like me to {b} — is that correct?",
    "Am I right that you want me to {b}?",
    "If I've understood, I should {b} — is that right?",
    "Could you confirm I should {b}?",
)


def _text(result: types.CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


def _structured(result: types.CallToolResult, text: str) -> Any:
    if result.structured_content is not None:
        return result.structured_content
    try:
        return json.loads(text)
    except ValueError:
        return {"result": text}


def _code(text: str) -> str:
    low = text.lower()
    if "invalid" in low or "expected" in low:
        return "invalid_arguments"
    if "not_found" in low or "not found" in low:
        return "not_found"
    return "execution_failed"


def offline_agent_brain(argument: str) -> AgentFactory:
    """The ``offline`` agent spec: takes no argument."""
    if argument:
        raise ConfigError(f"the offline agent takes no argument, got {argument!r}")

    async def factory(ctx: AgentContext) -> OfflineAgent:
        text = f"{ctx.description} {ctx.policy or ''}".lower()
        currency = "€" if "euro" in text else "£" if "pound" in text else "$" if "dollar" in text else ""
        # Tool calls go to the client untimed: the runner gives the whole reply the turn
        # timeout (``ctx.call_timeout_s`` is the same), counted from before its first call, and
        # the tool server bounds each call's SQL. A scope per call cost about 3% of a dialogue.
        return OfflineAgent(
            ctx.client.call_tool,
            ctx.tools,
            rng=ctx.rng,
            mistake_rate=ctx.mistake_rate,
            greeted=bool(ctx.history),
            rules=ctx.rules,
            currency=currency,
        )

    return factory


_CHECK_BETWEEN = re.compile(r"^\W*(\w+)\W*\s+BETWEEN\s+(-?[\d.]+)\s+AND\s+(-?[\d.]+)\W*$", re.I)
_CHECK_COMPARE = re.compile(r"^\W*(\w+)\W*\s*(>=|<=|>|<)\s*(-?[\d.]+)\W*$")
_CHECK_IN = re.compile(r"^\W*(\w+)\W*\s+IN\s*\((.*)\)\W*$", re.I)


def _check_rule(expression: str, args: dict[str, Any], thing: str, say: Phrasing | None = None) -> str:
    """A CHECK constraint the database gave (``renewals BETWEEN 0 AND 3``) as the rule it is, in
    words, with the value tried: "a loan can have at most 3 renewals, so 4 isn't possible"; ""
    when the expression is not one of the simple forms."""
    m = _CHECK_BETWEEN.match(expression)
    if m:
        column, lo, hi = m.group(1), m.group(2), m.group(3)
        tried = args.get(column)
        bound, word = (lo, "least") if isinstance(tried, int | float) and tried < float(lo) else (hi, "most")
        return _bound_words(column, f"at {word}", bound, tried, thing, say)
    m = _CHECK_COMPARE.match(expression)
    if m:
        column, op, bound = m.group(1), m.group(2), m.group(3)
        words = {">=": "at least", "<=": "at most", ">": "more than", "<": "less than"}[op]
        return _bound_words(column, words, bound, args.get(column), thing, say)
    m = _CHECK_IN.match(expression)
    if m:
        column = m.group(1)
        allowed = [v.strip().strip("'\"") for v in m.group(2).split(",") if v.strip()]
        listed = join([format_value(v, column) for v in allowed], "or")
        return f"the {label(column)} has to be {listed}"
    return ""


def _bound_words(column: str, words: str, bound: str, tried: Any, thing: str, say: Phrasing | None = None) -> str:
    name = label(column)
    if name.endswith("s") and not name.endswith("ss"):  # a count: "at most 3 renewals"
        rules = [f"{a(thing)} can have {words} {bound} {name}"]
        if words == "at most":
            rules += [f"{a(thing)} can only have up to {bound} {name}", f"the limit is {bound} {name} per {thing}"]
    else:
        rules = [f"the {name} has to be {words} {bound}", f"the {name} must be {words} {bound}"]
    rule = say.pick(rules) if say is not None else rules[0]
    if tried is None or isinstance(tried, bool):
        return rule
    shown = format_value(tried, column)
    ends = [f", so {shown} isn't possible", f", so {shown} won't go through", f" — {shown} is over that"]
    if words != "at most":
        ends = ends[:2]
    return rule + (say.pick(ends) if say is not None else ends[0])
