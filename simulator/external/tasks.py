"""Tasks over unknown tools, written by a model (``--tasks-model``) and checked by running them.

The model sees the server's tool list (names, descriptions, parameters, read or write)
and what the read tools returned on the probe run, and writes tasks in the shape of
``simulator.llm.tasks`` (goal, sub-requests, facts, calls, reported fields, rubric). An
argument may come from an earlier result: ``{"$from": i, "field": "..."}``, plus a
``pattern`` for text results.

Nothing the model writes is trusted: the scenario's tasks are carried out, in order, on a
fresh instance, and a task whose call fails is sent back once with the error and then
dropped; the kept tasks are run again on a fresh instance, so what is expected is what
really happened: the values reported from each call's result, each task's read calls
re-run once all tasks ran (``expected.calls``), and the files each task changed in the
state directory (``expected.state``).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import mcp_types as types
import msgspec

from schemas import (
    CallCheck,
    ChainStep,
    Environment,
    ExpectedOutcome,
    ExpectedValue,
    Fact,
    FileChange,
    Mode,
    RubricItem,
    Scenario,
    SubRequest,
    Task,
    ValueRef,
)
from simulator.external.instance import Instance, open_instance
from simulator.external.planner import Probe, is_read_tool, scenario_of
from simulator.external.proxy import Answer, call_instance
from simulator.external.results import result_rows, value_of
from simulator.external.spec import ExternalSpec, display_path
from simulator.external.tree import diff, snapshot
from simulator.external.verify import Route, result_value
from simulator.llm.setup import current_setup
from simulator.llm.tasks import TaskBatch, TaskPlan
from simulator.log import get_logger
from simulator.offline.language import label
from simulator.offline.scenarios import make_persona
from simulator.providers import (
    ChatMessage,
    LLMClient,
    Request,
    StructuredOutputError,
    complete_structured,
    parse_model,
)

__all__ = ["carry_out", "plan_with_model", "task_prompt"]

log = get_logger(__name__)

_PROBE_SHOWN = 12
_RESULT_CHARS = 500


class _Invalid(Exception):
    def __init__(self, index: int, problem: str) -> None:
        super().__init__(problem)
        self.index = index
        self.problem = problem


@dataclass(slots=True)
class _Ran:
    steps: list[ChainStep]
    answers: list[Answer]
    values: list[ExpectedValue]
    state: list[FileChange]


def task_prompt(
    environment: Environment,
    tools: Sequence[types.Tool],
    probe: Probe,
    count: int,
    user_tools: Sequence[types.Tool] = (),
) -> str:
    """The task generator's prompt for ``count`` tasks (``user_tools``: the user's own, "dual control")."""
    template = resources.files("simulator.external").joinpath("task_generator.md").read_text(encoding="utf-8")
    listed = [
        f"- {t.name} ({'read' if is_read_tool(t) else 'write'}): {t.description or ''}\n"
        f"  parameters: {json.dumps(t.input_schema, ensure_ascii=False)}"
        for t in tools
    ]
    if user_tools:
        listed.append(
            "\nThe user's own tools (the user, not the assistant, calls these; a task may need the user to "
            "do something on their side, which the assistant asks for):"
        )
        listed += [
            f"- {t.name} ({'read' if is_read_tool(t) else 'write'}, user's side): {t.description or ''}\n"
            f"  parameters: {json.dumps(t.input_schema, ensure_ascii=False)}"
            for t in user_tools
        ]
    tried = [
        f"- {o.tool}({json.dumps(o.args, ensure_ascii=False)}) returned:\n{_indent(o.answer.text[:_RESULT_CHARS])}"
        for o in probe.observations[:_PROBE_SHOWN]
    ]
    server = environment.server
    state = server.state_kind if server is not None and server.state is not None else None
    shown = display_path(Path(server.state)) if server is not None and server.state is not None else ""
    note = (
        f"\nThe state is a {'directory' if state == 'dir' else 'file'}: write {shown} wherever a tool needs "
        "its path; each conversation gets its own copy.\n"
        if state
        else ""
    )
    return template.format(
        description=environment.description,
        tools="\n".join(listed),
        probe="\n".join(tried) or "- (no read tool returned anything)",
        count=count,
        state_note=note,
    )


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines()) or "    (empty)"


def _resolve(
    i: int, name: str, value: dict[str, Any], steps: list[ChainStep], answers: list[Answer]
) -> tuple[ValueRef, Any]:
    source, field, pattern = value.get("$from"), value.get("field", "result"), value.get("pattern")
    if not isinstance(source, int) or isinstance(source, bool) or not 0 <= source < i:
        raise _Invalid(-1, f"call {i}, argument {name!r}: $from must be the index of an earlier call (0 to {i - 1})")
    if not isinstance(field, str) or (pattern is not None and not isinstance(pattern, str)):
        raise _Invalid(-1, f"call {i}, argument {name!r}: 'field' and 'pattern' must be strings")
    ref = ValueRef(step=steps[source].id, field=field, pattern=pattern)
    rows = result_rows(answers[source])[0]
    found = rows[0].get(field) if rows else None
    if pattern is not None and found is not None:
        try:
            match = re.search(pattern, str(found))
        except re.error as exc:
            raise _Invalid(-1, f"call {i}, argument {name!r}: the pattern is not a regular expression: {exc}") from None
        found = match.group(1) if match is not None and match.groups() else None
    if found is None:
        raise _Invalid(
            -1, f"call {i}, argument {name!r}: call {source}'s result has no such value ({field}, {pattern})"
        )
    return ref, found


async def _run_task(plan: TaskPlan, task_id: str, route: Route, tools: dict[str, types.Tool], limit: float) -> _Ran:
    if not plan.calls:
        raise _Invalid(-1, "it has no calls; a task needs at least one tool call")
    if not plan.sub_requests:
        raise _Invalid(-1, "it has no sub_requests; the user needs at least one thing to ask for")
    steps: list[ChainStep] = []
    answers: list[Answer] = []
    values: list[ExpectedValue] = []
    for i, call in enumerate(plan.calls):
        sid = f"{task_id}.s{i}"
        if call.tool not in tools:
            raise _Invalid(
                -1, f"call {i} uses tool {call.tool!r}, which does not exist; the tools are: {', '.join(tools)}"
            )
        literal: dict[str, Any] = {}
        refs: dict[str, ValueRef] = {}
        resolved: dict[str, Any] = {}
        for name, value in call.arguments.items():
            if isinstance(value, dict) and "$from" in value:
                refs[name], resolved[name] = _resolve(i, name, value, steps, answers)
            else:
                literal[name] = resolved[name] = value
        answer = await call_instance(route(call.tool), call.tool, resolved, limit)
        if answer.is_error:
            raise _Invalid(-1, f"call {i} ({call.tool} with {json.dumps(resolved)}) failed: {answer.text[:300]}")
        for name in call.report:
            rows, from_text = result_rows(answer)
            key = name.strip().lower().replace(" ", "_")
            found = rows[0].get(name) if rows and not from_text else value_of(answer, key)
            if found is None:
                raise _Invalid(-1, f"call {i} ({call.tool}) returned nothing called {name!r} to report")
            values.append(ExpectedValue(step=sid, name=name if not from_text else key, value=found))
        report = ["result"] if result_rows(answer)[1] else list(call.report)
        steps.append(ChainStep(id=sid, tool=call.tool, arguments=literal, refs=refs, report=report, resolved=resolved))
        answers.append(answer)
    return _Ran(steps, answers, values, [])


class _Carrier:
    """Carries tasks out one after the other on one instance; a failed task taints it, so the
    instance is replaced by a fresh one on which the kept tasks are run again."""

    def __init__(
        self,
        spec: ExternalSpec,
        tools: dict[str, types.Tool],
        home: Path,
        ignore: Sequence[str],
        user_spec: ExternalSpec | None = None,
        user_tools: frozenset[str] = frozenset(),
    ) -> None:
        self.spec = spec
        self.user_spec = user_spec
        self.user_tools = user_tools
        self._route: Route | None = None
        self.tools = tools
        self.home = home
        self.ignore = ignore
        self.plans: list[TaskPlan] = []
        self.ran: list[_Ran] = []
        self._stack = AsyncExitStack()
        self._instance: Instance | None = None
        self._before: dict[str, str] = {}
        self._starts = 0

    async def _start(self) -> None:
        await self._stack.aclose()
        self._starts += 1
        self._instance = await self._stack.enter_async_context(open_instance(self.spec, self.home / f"i{self._starts}"))
        self._route = Route(self._instance)
        if self.user_spec is not None:
            user = await self._stack.enter_async_context(open_instance(self.user_spec, self.home / f"u{self._starts}"))
            self._route = Route(self._instance, user, self.user_tools)
        self._before = snapshot(self._instance.state)

    async def _run(self, plan: TaskPlan, k: int) -> _Ran:
        assert self._instance is not None and self._route is not None
        done = await _run_task(plan, f"t{k}", self._route, self.tools, self.spec.call_timeout_s)
        after = snapshot(self._instance.state)
        done.state = diff(self._before, after, ignore=self.ignore)
        self._before = after
        return done

    async def add(self, plan: TaskPlan) -> None:
        """Carry ``plan`` out after the kept ones; raises _Invalid (and keeps nothing) when it fails."""
        if self._instance is None:
            await self._start()
        try:
            done = await self._run(plan, len(self.ran))
        except _Invalid:
            await self._start()
            self.ran = [await self._run(kept, k) for k, kept in enumerate(self.plans)]
            raise
        self.plans.append(plan)
        self.ran.append(done)

    async def tasks(self) -> list[Task]:
        """The kept tasks, with each one's read calls re-run now that all of them ran."""
        assert self._instance is not None or not self.plans
        out = []
        for k, (plan, done) in enumerate(zip(self.plans, self.ran, strict=True)):
            checks = []
            for step in done.steps:
                if self._route is None or not is_read_tool(self.tools[step.tool]):
                    continue
                target = self._route(step.tool)
                again = await call_instance(target, step.tool, step.resolved, self.spec.call_timeout_s)
                if not again.is_error:
                    checks.append(
                        CallCheck(
                            description=f"{step.tool} re-run",
                            tool=step.tool,
                            arguments=dict(step.resolved),
                            expected=result_value(again),
                        )
                    )
            out.append(_task(plan, f"t{k}", done, checks))
        return out

    async def aclose(self) -> None:
        await self._stack.aclose()


def _static_problem(plan: TaskPlan, tools: dict[str, types.Tool]) -> str | None:
    """What makes ``plan`` impossible without running anything (then no instance is spent on it)."""
    if not plan.calls:
        return "it has no calls; a task needs at least one tool call"
    if not plan.sub_requests:
        return "it has no sub_requests; the user needs at least one thing to ask for"
    for i, call in enumerate(plan.calls):
        if call.tool not in tools:
            return f"call {i} uses tool {call.tool!r}, which does not exist; the tools are: {', '.join(tools)}"
    return None


async def carry_out(
    spec: ExternalSpec,
    plans: Sequence[TaskPlan],
    tools: dict[str, types.Tool],
    home: Path,
    *,
    ignore: Sequence[str],
    user_spec: ExternalSpec | None = None,
    user_tools: frozenset[str] = frozenset(),
) -> list[Task]:
    """Run ``plans`` in order on a fresh instance and build their tasks; raises _Invalid naming the failing one.

    ``tools`` holds the user's tools too; those named in ``user_tools`` run on a ``user_spec`` instance.
    """
    carrier = _Carrier(spec, tools, home, ignore, user_spec, user_tools)
    try:
        for k, plan in enumerate(plans):
            try:
                await carrier.add(plan)
            except _Invalid as exc:
                raise _Invalid(k, exc.problem) from None
        return await carrier.tasks()
    finally:
        await carrier.aclose()


def _task(plan: TaskPlan, task_id: str, done: _Ran, checks: list[CallCheck]) -> Task:
    n = len(done.steps)
    owner: dict[int, int] = {}
    for k, sub in enumerate(plan.sub_requests):
        for c in sub.calls:
            if 0 <= c < n and c not in owner:
                owner[c] = k
    current = 0
    for c in range(n):
        current = owner.setdefault(c, current)
    subs: list[SubRequest] = []
    for k, sub in enumerate(plan.sub_requests):
        covered = [done.steps[c].id for c in range(n) if owner[c] == k]
        if covered:
            subs.append(SubRequest(id=f"{task_id}.r{k}", steps=covered, intent="lookup", text=sub.text))
        elif subs:
            subs[-1] = msgspec.structs.replace(subs[-1], text=f"{subs[-1].text} {sub.text}")
    facts = [Fact(name=f.name, value=f.value, description=f.description or f"the {label(f.name)}") for f in plan.facts]
    return Task(
        id=task_id,
        goal=plan.goal,
        chain=done.steps,
        sub_requests=subs,
        facts=facts,
        difficulty=plan.difficulty,
        rubric=[RubricItem(r.kind, r.text) for r in plan.rubric],
        expected=ExpectedOutcome(values=done.values, calls=checks, state=done.state),
    )


async def _scenario_tasks(
    client: LLMClient,
    prompt: str,
    spec: ExternalSpec,
    tools: dict[str, types.Tool],
    home: Path,
    count: int,
    ignore: Sequence[str],
    user_spec: ExternalSpec | None = None,
    user_tools: frozenset[str] = frozenset(),
) -> list[Task]:
    messages = [ChatMessage.user(prompt)]
    batch = await complete_structured(client, Request(messages=messages), TaskBatch, name="tasks")
    messages.append(ChatMessage.assistant(msgspec.json.encode(batch).decode()))
    carrier = _Carrier(spec, tools, home, ignore, user_spec, user_tools)
    try:
        for index, plan in enumerate(batch.tasks[:count]):
            candidate = plan
            for tries in range(2):
                try:
                    problem = _static_problem(candidate, tools)
                    if problem is not None:
                        raise _Invalid(index, problem)
                    await carrier.add(candidate)
                except _Invalid as exc:
                    if tries:
                        log.warning("external_task_dropped", task=index, problem=exc.problem)
                        break
                    repair = [
                        *messages,
                        ChatMessage.user(
                            f"Task {index} (goal: {candidate.goal[:200]!r}) could not be carried out: {exc.problem}. "
                            "Reply with that one task corrected, as one JSON object with the same fields "
                            "(goal, difficulty, sub_requests, facts, calls, rubric)."
                        ),
                    ]
                    try:
                        candidate = await complete_structured(client, Request(messages=repair), TaskPlan, name="task")
                    except StructuredOutputError as again:
                        log.warning("external_task_dropped", task=index, problem=str(again))
                        break
                    continue
                break
        return await carrier.tasks()
    finally:
        await carrier.aclose()


async def plan_with_model(
    spec: ExternalSpec,
    environment: Environment,
    tools: Sequence[types.Tool],
    probe: Probe,
    *,
    model: str,
    count: int,
    seed: int,
    mode: Mode,
    start: int,
    root: Path,
    user_spec: ExternalSpec | None = None,
    user_tools: Sequence[types.Tool] = (),
) -> list[Scenario]:
    """``count`` scenarios (ids from ``start``) whose tasks the model ``model`` wrote, each checked by running it."""
    setup = current_setup()
    client = setup.client(parse_model(model)).bind(role="tasks", meter=setup.meter)
    by_name = {t.name: t for t in [*tools, *user_tools]}
    users = frozenset(t.name for t in user_tools)
    ignore = environment.server.volatile_paths if environment.server is not None else []
    out: list[Scenario] = []
    for i in range(start, start + count):
        rng = random.Random(f"{seed}:{environment.id}:{i}")
        persona = make_persona(rng)
        n = rng.choice([2, 3, 3, 4])
        try:
            prompt = task_prompt(environment, tools, probe, n, user_tools)
            tasks = await _scenario_tasks(
                client, prompt, spec, by_name, root / f"tasks-{i}", n, ignore, user_spec, users
            )
        except StructuredOutputError as exc:
            log.warning("external_tasks_unusable", dialogue=i, problem=str(exc))
            continue
        if not tasks:
            log.warning("external_no_task", dialogue=i)
            continue
        out.append(scenario_of(environment, seed, i, tasks, persona, mode))
    return out
