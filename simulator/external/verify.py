"""Checking tasks over an external server, which has no database to query.

What really happened decides, never what the agent claims:

- **replay**: the gold calls of every task run, in order, on a fresh instance (a fresh
  copy of the state template); references to earlier results are resolved from the
  replay's own results, as an agent would;
- **read calls re-run**: each task's checks (``expected.calls``) run on the dialogue's
  final state and on the replay's; their results must agree. Parts of a result that
  differ between the planning run and the replay (times, generated ids) vary between runs
  and are not compared: they are counted in the outcome's ``unchecked``;
- **state tree** (``--state-dir``/``--state-file``): the files the dialogue added, removed
  or changed must be those the replay did. A change whose content or name varies between
  runs is compared by kind only; a change the replay did not make is collateral and fails;
- **writes made**: every write step of a task has a successful call of its tool in the
  task's part of the dialogue, with the step's arguments (what a server without a state to
  compare can show): each argument the step sets has its value as the gold replay resolved
  it (a reference to an earlier result whose value varies between runs: as the dialogue's
  own result of that step's tool gave it); numbers compare as numbers (``3`` = ``3.0`` =
  ``"3"``), strings ignoring case and spacing, as the built-in verifier compares a write's
  arguments; arguments the step does not set are not compared. Each call counts for one step;
- **values**: a value the agent had to tell counts only when it said it (as the built-in
  verifier reads values: numbers as numbers, dates in common forms) after a result of the
  step's tool in this task's part of the dialogue contained it.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from schemas import (
    AgentMessage,
    ChainStep,
    Check,
    CheckKind,
    Event,
    Evidence,
    FileChange,
    Scenario,
    Task,
    TaskOutcome,
    ToolCall,
    ToolResult,
    ValueRef,
    Verdict,
)
from simulator.dialogue.grounding import contains, mentions, task_parts
from simulator.dialogue.verify import nothing_to_check, value_key
from simulator.external.instance import Instance
from simulator.external.proxy import Answer, call_instance
from simulator.external.results import result_rows, value_of
from simulator.external.tree import Snapshot, apply_changes, diff

__all__ = ["Replay", "Route", "compare", "compare_result", "replay", "resolve_arguments", "result_value", "run_checks"]


@dataclass(slots=True)
class Replay:
    """What the gold replay did: per task, the steps that failed (and why)."""

    problems: dict[str, list[str]] = field(default_factory=dict)
    answers: dict[str, Answer] = field(default_factory=dict)


def result_value(answer: Answer) -> Any:
    """What a result is compared by: its structured content, else its text."""
    return answer.structured if answer.structured is not None else answer.text


def resolve_arguments(step: ChainStep, answers: dict[str, Answer]) -> dict[str, Any]:
    """The step's arguments with references resolved from ``answers`` (falling back to the planned ones)."""
    args = dict(step.resolved or step.arguments)
    for name, ref in step.refs.items():
        answer = answers.get(ref.step)
        value = _ref_value(ref, answer) if answer is not None else None
        if value is not None:
            args[name] = value
    return args


def _ref_value(ref: ValueRef, answer: Answer) -> Any:
    """What ``ref`` points at in ``answer`` (None when the answer has no such value)."""
    if answer.is_error:
        return None
    rows = result_rows(answer)[0]
    if len(rows) <= ref.row:
        return None
    value = rows[ref.row].get(ref.field)
    if ref.pattern is not None:
        found = re.search(ref.pattern, str(value)) if value is not None else None
        value = found.group(1) if found is not None else None
    return value


@dataclass(frozen=True, slots=True)
class Route:
    """Which instance a tool is called on: the user's own tools go to ``user`` ("dual control")."""

    agent: Instance
    user: Instance | None = None
    user_tools: frozenset[str] = frozenset()

    def __call__(self, tool: str) -> Instance:
        return self.user if self.user is not None and tool in self.user_tools else self.agent


def _route(target: Instance | Route) -> Route:
    return target if isinstance(target, Route) else Route(target)


async def replay(target: Instance | Route, scenario: Scenario, limit_s: float) -> Replay:
    """Run every task's gold calls, in order, on ``target`` (user steps on the user's instance)."""
    route = _route(target)
    out = Replay()
    for task in scenario.tasks:
        for step in task.chain:
            args = resolve_arguments(step, out.answers)
            answer = await call_instance(route(step.tool), step.tool, args, limit_s)
            out.answers[step.id] = answer
            if answer.is_error:
                out.problems.setdefault(task.id, []).append(
                    f"the gold call {step.id} ({step.tool}) failed on a fresh instance: {answer.text[:200]}"
                )
    return out


async def run_checks(target: Instance | Route, scenario: Scenario, limit_s: float) -> dict[str, list[Answer | None]]:
    """Each task's read calls, run now on ``target``; None where the server could not answer."""
    route = _route(target)
    out: dict[str, list[Answer | None]] = {}
    for task in scenario.tasks:
        answers: list[Answer | None] = []
        for check in task.expected.calls:
            answer = await call_instance(route(check.tool), check.tool, check.arguments, limit_s)
            answers.append(None if answer.error_code == "server_failure" else answer)
        out[task.id] = answers
    return out


def _flatten(value: Any, prefix: str = "$") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {f"{prefix}{{}}": sorted(value)}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}"))
        return out
    if isinstance(value, list):
        out = {f"{prefix}[]": len(value)}
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def _as_text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def compare_result(planned: Any, gold: Any, live: Any) -> tuple[list[str], int]:
    """Problems of ``live`` against ``gold``, comparing only what ``planned`` and ``gold`` agree on.

    Returns the problems and how many parts were not compared (they vary between runs).
    """
    p_text, g_text, l_text = _as_text(planned), _as_text(gold), _as_text(live)
    if (g_text is None) != (l_text is None):
        return ["the result has another form than on the replay"], 0
    if g_text is not None and l_text is not None:
        g_lines, l_lines = g_text.splitlines(), l_text.splitlines()
        p_lines = (p_text or "").splitlines() if p_text is not None else g_lines
        stable = Counter(g_lines) & Counter(p_lines)
        volatile = len(g_lines) - sum(stable.values())
        problems = []
        missing = stable - Counter(l_lines)
        if missing:
            shown = next(iter(missing))
            problems.append(f"{sum(missing.values())} line(s) of the replay's result are missing, e.g. {shown[:80]!r}")
        if len(l_lines) != len(g_lines):
            problems.append(f"{len(l_lines)} lines instead of the replay's {len(g_lines)}")
        return problems, volatile
    g_flat, l_flat = _flatten(gold), _flatten(live)
    p_flat = _flatten(planned) if planned is not None and _as_text(planned) is None else g_flat
    keys = {k for k, v in g_flat.items() if k in p_flat and p_flat[k] == v}
    problems = [
        f"{k[2:] or 'the result'} is {l_flat.get(k)!r}, the replay gave {g_flat[k]!r}"
        for k in sorted(keys)
        if l_flat.get(k) != g_flat[k] and not k.endswith(("{}", "[]"))
    ]
    problems += [
        f"{k[2:-2] or 'the result'} has another shape than on the replay"
        for k in sorted(keys)
        if k.endswith(("{}", "[]")) and l_flat.get(k) != g_flat[k]
    ]
    leaves = [k for k in g_flat if not k.endswith(("{}", "[]"))]
    return problems[:5], sum(1 for k in leaves if k not in keys)


def _top(path: str) -> str:
    return path.split("/", 1)[0]


def compare_trees(
    template: Snapshot, live: Snapshot, gold: Snapshot, planned: list[FileChange], ignore: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Problems of the dialogue's final state against the replay's, and what was compared by kind only."""
    live_diff = {c.path: c for c in diff(template, live, ignore=ignore)}
    gold_diff = {c.path: c for c in diff(template, gold, ignore=ignore)}
    plan_diff = {c.path: c for c in diff(template, apply_changes(template, planned), ignore=ignore)}
    problems: list[str] = []
    unchecked: list[str] = []
    spare: Counter[tuple[str, str]] = Counter()  # replay changes whose names vary between runs
    unmatched: list[FileChange] = []
    for path in sorted(set(live_diff) | set(gold_diff)):
        mine, theirs = live_diff.get(path), gold_diff.get(path)
        if mine is not None and theirs is not None:
            if mine.change != theirs.change:
                problems.append(f"state: {path} was {mine.change}, the replay {theirs.change} it")
            elif mine.digest != theirs.digest:
                planned_change = plan_diff.get(path)
                if planned_change is not None and planned_change.digest == theirs.digest:
                    problems.append(f"state: {path} has other content than on the replay")
                else:
                    unchecked.append(f"state: the content of {path} varies between runs; compared by kind only")
        elif theirs is not None:
            if path in plan_diff:
                problems.append(f"state: {path} was not {theirs.change} (the replay {theirs.change} it)")
            else:
                spare[(theirs.change, _top(path))] += 1
        elif mine is not None:
            unmatched.append(mine)
    for change in unmatched:
        key = (change.change, _top(change.path))
        if spare[key] > 0:
            spare[key] -= 1
            unchecked.append(f"state: {change.path} ({change.change}) matched by kind; its name varies between runs")
        else:
            problems.append(f"state: {change.path} was {change.change}, which no task asked for")
    for (kind, top), count in sorted(spare.items()):
        if count:
            problems.append(f"state: {count} file(s) under {top} were not {kind} as on the replay")
    return problems, unchecked


def _values_missing(
    scenario: Scenario,
    task_index: int,
    events: list[Event],
    gold: Replay | None,
    parts: tuple[dict[str, list[int]], dict[str, list[int]]],
) -> tuple[list[str], list[str]]:
    """Values not said, in the task's part, after a result of the step's tool there that held
    them; and the values checked against the dialogue's own results because the replay gave
    another value than planning did (they vary between runs)."""
    task = scenario.tasks[task_index]
    tools = {s.id: s.tool for s in task.chain}
    messages, results = parts[0].get(task.id, []), parts[1].get(task.id, [])
    missing: list[str] = []
    varying: list[str] = []
    for v in task.expected.values:
        tool = tools.get(v.step)
        mine = [e for i in results if isinstance(e := events[i], ToolResult) and not e.is_error and e.tool == tool]
        wanted: list[Any] = [v.value]
        replayed = gold.answers.get(v.step) if gold is not None else None
        if replayed is not None and not replayed.is_error:
            again = value_of(replayed, v.name)
            if again is not None and again != v.value:
                # The value varies between runs: what counts is what this dialogue's own call returned.
                wanted = [
                    found
                    for e in mine
                    for found in [value_of(Answer(e.text, is_error=False, structured=e.structured), v.name)]
                    if found is not None
                ]
                varying.append(f"{v.step}:{v.name} varies between runs; checked against this dialogue's own result")
        if not any(_said_after_result(value, tool, messages, results, events) for value in wanted):
            missing.append(f"{v.step}:{v.name}={v.value!r}")
    return missing, varying


def _said_after_result(
    value: Any, tool: str | None, messages: list[int], results: list[int], events: list[Event]
) -> bool:
    """Said (as a number as a number, a date in a common form...) in an agent message of the
    part, after a result of ``tool`` in the part held it."""
    held = [i for i in results if isinstance(e := events[i], ToolResult) and e.tool == tool and contains(e, value)]
    if not held:
        return False
    first = held[0]
    return any(
        i > first and isinstance(m := events[i], AgentMessage) and mentions(m.text, value) is not None for i in messages
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(value: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())


def _same(got: Any, want: Any) -> bool:
    """Whether an argument's value ``got`` is the value ``want``: numbers as numbers (a number
    written as a string too), strings ignoring case and spacing, lists item by item, objects by
    the fields ``want`` has; a missing value (None) matches only None."""
    if isinstance(want, bool) or isinstance(got, bool):
        return isinstance(want, bool) and isinstance(got, bool) and got == want
    if _is_number(want):
        if isinstance(got, str):
            try:
                got = float(got.strip())
            except ValueError:
                return False
        return _is_number(got) and math.isclose(float(got), float(want), rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(want, str):
        if _is_number(got):
            return _same(want, got)
        return isinstance(got, str) and _text(got) == _text(want)
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(_same, got, want))
    if isinstance(want, dict):
        return isinstance(got, dict) and all(_same(got.get(k), v) for k, v in want.items())
    return bool(got == want)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _wanted_arguments(
    step: ChainStep, task: Task, events: list[Event], results: list[int], gold: Replay | None
) -> dict[str, list[Any]]:
    """Each argument the step sets, with the values that count for it.

    As the gold replay resolved it; a reference whose value varies between runs (the replay
    resolved it to another value than planning did) counts as the dialogue's own result of
    the referenced step's tool, in the task's part, gave it. Without a replay (a shared
    server) both the planned value and the dialogue's own count.
    """
    planned = dict(step.resolved or step.arguments)
    replayed = resolve_arguments(step, gold.answers) if gold is not None else planned
    wanted = {name: [value] for name, value in replayed.items()}
    tools = {s.id: s.tool for s in task.chain}
    for name, ref in step.refs.items():
        if gold is not None and _same(replayed.get(name), planned.get(name)):
            continue  # the same on the replay as when planned: required as it is
        source = tools.get(ref.step)
        own = [
            value
            for i in results
            if isinstance(e := events[i], ToolResult) and not e.is_error and e.tool == source
            for value in [_ref_value(ref, Answer(e.text, is_error=False, structured=e.structured))]
            if value is not None
        ]
        wanted[name] = own + ([planned[name]] if gold is None and name in planned else [])
    return wanted


def _argument_problems(arguments: dict[str, Any] | None, wanted: dict[str, list[Any]]) -> list[str]:
    """What in ``arguments`` differs from ``wanted``, one entry per argument (empty when all match)."""
    if arguments is None:
        return ["its arguments were not recorded"]
    problems = []
    for name, values in wanted.items():
        got = arguments.get(name)
        if any(_same(got, value) for value in values):
            continue
        need = _show(values[0]) if values else "the value of the referenced result"
        problems.append(
            f"without {name} (the task needs {need})"
            if name not in arguments
            else f"with {name}={_show(got)} where the task needs {need}"
        )
    return problems


def _write_checks(
    task: Task,
    events: list[Event],
    results: list[int],
    write_tools: frozenset[str],
    gold: Replay | None,
    calls: dict[str, ToolCall],
) -> list[Check]:
    """One check per write step of the task: a successful call of its tool in the task's part,
    with the step's arguments; each call counts for one step."""
    made = [
        (i, e) for i in results if isinstance(e := events[i], ToolResult) and not e.is_error and e.tool in write_tools
    ]
    used: set[int] = set()
    checks = []
    for step in task.chain:
        if step.tool not in write_tools:
            continue
        name = f"{step.id}:{step.tool}"
        wanted = _wanted_arguments(step, task, events, results, gold)
        expected = {k: v[0] if v else None for k, v in wanted.items()}
        closest: list[str] | None = None
        for i, e in made:
            if i in used or e.tool != step.tool:
                continue
            call = calls.get(e.call_id)
            problems = _argument_problems(call.arguments if call is not None else None, wanted)
            if not problems:
                used.add(i)
                evidence = [Evidence(result=e.seq, said=step.tool)]
                checks.append(
                    Check(kind=CheckKind.CALL, name=name, verdict=Verdict.PASS, expected=expected, evidence=evidence)
                )
                break
            if closest is None or len(problems) < len(closest):
                closest = problems
        else:
            if closest is None:
                detail = f"{step.id}: no successful call of {step.tool} in the task's part of the dialogue"
            else:
                detail = f"{step.id}: {step.tool} was called, but {closest[0]}"
            checks.append(Check(kind=CheckKind.CALL, name=name, verdict=Verdict.FAIL, expected=expected, detail=detail))
    return checks


def compare(
    scenario: Scenario,
    events: list[Event],
    *,
    live_checks: dict[str, list[Answer | None]],
    gold: Replay | None,
    gold_checks: dict[str, list[Answer | None]] | None,
    trees: tuple[Snapshot, Snapshot, Snapshot] | None,
    ignore: Sequence[str] = (),
    not_checked: str | None = None,
    write_tools: frozenset[str] = frozenset(),
) -> list[TaskOutcome]:
    """One outcome per task from what the dialogue left and what the replay did.

    ``trees`` is (template, final state, replay's state) for a state directory or file;
    ``not_checked`` says why the replay could not run at all (then every task fails);
    ``write_tools``: the server's tools that are not reads — each write step of a task must
    have been really made, in the task's part (a server without a state to compare shows
    nothing else of it).
    """
    ids = [t.id for t in scenario.tasks]
    parts = (task_parts(events, ids), task_parts(events, ids, kind=ToolResult))
    calls = {e.call_id: e for e in events if isinstance(e, ToolCall)}
    planned_state = [c for task in scenario.tasks for c in task.expected.state]
    tree_problems: list[str] = []
    tree_unchecked: list[str] = []
    if trees is not None and gold is not None:
        tree_problems, tree_unchecked = compare_trees(*trees, planned_state, ignore)
    outcomes = []
    for index, task in enumerate(scenario.tasks):
        checks: list[Check] = []
        unchecked: list[str] = []
        if not_checked is not None or gold is None or gold_checks is None:
            detail = f"not checked: {not_checked or 'the replay did not run'}"
            checks.append(Check(kind=CheckKind.ASSERTION, name="replay", verdict=Verdict.ERROR, detail=detail))
        else:
            checks += [
                Check(kind=CheckKind.ASSERTION, name="replay", verdict=Verdict.FAIL, detail=p)
                for p in gold.problems.get(task.id, [])
            ]
            mine, theirs = live_checks.get(task.id, []), gold_checks.get(task.id, [])
            for k, check in enumerate(task.expected.calls):
                live = mine[k] if k < len(mine) else None
                replayed = theirs[k] if k < len(theirs) else None
                problems: list[str] = []
                if live is None:
                    problems = ["could not be re-run on the final state (the server was gone)"]
                elif replayed is None:
                    problems = ["could not be re-run on the replay"]
                elif live.is_error != replayed.is_error:
                    problems = [
                        f"{'failed' if live.is_error else 'worked'} on the final "
                        f"state, {'failed' if replayed.is_error else 'worked'} on the replay"
                    ]
                else:
                    problems, varying = compare_result(check.expected, result_value(replayed), result_value(live))
                    if varying:
                        unchecked.append(
                            f"{check.description}: {varying} part(s) vary between runs and were not compared"
                        )
                checks += [
                    Check(
                        kind=CheckKind.ASSERTION,
                        name=check.description,
                        verdict=Verdict.FAIL,
                        detail=f"{check.description}: {p}",
                    )
                    for p in problems
                ] or [Check(kind=CheckKind.ASSERTION, name=check.description, verdict=Verdict.PASS)]
            if trees is not None:
                checks += [
                    Check(kind=CheckKind.STATE, name="state", verdict=Verdict.FAIL, detail=p) for p in tree_problems
                ] or [
                    Check(
                        kind=CheckKind.STATE, name="state", verdict=Verdict.PASS, detail="the changes are the replay's"
                    )
                ]
            unchecked += tree_unchecked
        checks += _write_checks(task, events, parts[1].get(task.id, []), write_tools, gold, calls)
        missing, varying_values = _values_missing(scenario, index, events, gold, parts)
        unchecked += varying_values
        checks += [
            Check(
                kind=CheckKind.VALUE,
                name=value_key(v),
                verdict=Verdict.FAIL if value_key(v) in missing else Verdict.PASS,
                expected=v.value,
                detail="not said in the task's part after a result of the step's tool that held it"
                if value_key(v) in missing
                else "",
            )
            for v in task.expected.values
        ]
        if not checks:  # nothing to check cannot count as done
            checks.append(nothing_to_check("the task has no read to re-run, no state, no write and no value to check"))
        failed = [c.detail or c.name for c in checks if c.kind is not CheckKind.VALUE and c.verdict is not Verdict.PASS]
        outcomes.append(
            TaskOutcome(
                task_id=task.id,
                success=all(c.verdict is Verdict.PASS for c in checks),
                failed_assertions=failed,
                missing_values=missing,
                unchecked=unchecked,
                checks=checks,
            )
        )
    return outcomes
