"""Checking a dialogue's tasks against what really happened.

Three kinds of check decide a task (each recorded as a :class:`~schemas.Check` with its
verdict):

- **state** (a task that writes): the whole final database equals the replay of the gold
  calls of every task on a fresh copy (``simulator.dialogue.statediff``). A change no
  gold call explains cannot be attributed to one task, so any difference fails the
  dialogue and every task of it that writes.
- **call** (a task that writes): each of its writes was really made in the task's part of
  the dialogue: a successful call of the step's tool that changed a row, with the gold
  arguments (a generated key of a new row may differ). The state check cannot see a
  write whose effect a later task undid (a row created, then deleted).
- **assertion**: each of the task's SQL assertions holds on the final database. They say
  what the task needed, so a failed one explains a state difference.
- **value**: each value the agent had to tell the user was said in the task's part of
  the dialogue, after a tool result that contained it (``simulator.dialogue.grounding``).
- **refusal** (a task the environment's rules forbid, ``expected.refusal``): the agent said
  in the task's part that it would not do it (recorded as an assertion named ``refused``),
  after a tool result of that part that showed the row the request is about, and the whole
  database equals the gold replay (which makes no write for it).

A task passes when all of its checks pass; a dialogue when every task passed, the state
matched and the conversation ended with the user done (:func:`dialogue_succeeded`). The
rubric judge, when one is used, adds its verdict on top (``simulator.llm.judge``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas import (
    AgentMessage,
    Check,
    CheckKind,
    Effect,
    Environment,
    Event,
    Evidence,
    ExpectedValue,
    Mode,
    Scenario,
    SqlAssertion,
    StateCheck,
    Task,
    TaskOutcome,
    TerminationReason,
    ToolCall,
    ToolResult,
    Verdict,
)
from schemas.errors import VerificationError
from simulator.dialogue.grounding import Anchor, Grounding, find_row, result_rows, shows_row
from simulator.dialogue.reading import refusal
from simulator.dialogue.statediff import MAX_CHANGES, diff_states, replay_gold, table_rules, writes
from toolservers.database import Database

__all__ = [
    "Verification",
    "anchors",
    "check_assertion",
    "check_state",
    "dialogue_succeeded",
    "expected_values",
    "nothing_to_check",
    "refused",
    "unverified",
    "value_key",
    "verify_dialogue",
]

Query = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]


def check_assertion(query: Query, assertion: SqlAssertion) -> bool:
    """Whether ``assertion``'s query returns exactly its expected rows."""
    rows = [list(r) for r in query(assertion.sql, assertion.params)]
    if len(rows) != len(assertion.expected):
        return False
    return all(_same_row(a, b) for a, b in zip(rows, assertion.expected, strict=True))


def _same_row(a: list[Any], b: list[Any]) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if isinstance(x, float) or isinstance(y, float):
            if x is None or y is None or not math.isclose(float(x), float(y), rel_tol=1e-9, abs_tol=1e-9):
                return False
        elif x != y:
            return False
    return True


def expected_values(task: Task, mode: Mode = Mode.USER_ORIENTED) -> list[ExpectedValue]:
    """The values the agent must tell the user for ``task`` (the refinement's included).

    In task-oriented mode the user asks for the refinement with the request, so the step it
    refines runs only refined: that step's own values (of the unrefined result: its first
    row, say) are not expected, the refinement's are.
    """
    ref = task.refinement
    if ref is None:
        return list(task.expected.values)
    own = task.expected.values
    if mode is Mode.TASK_ORIENTED:
        own = [v for v in own if v.step != ref.step]
    return [*own, *ref.values]


#: Words an agent refuses with ("I'm sorry, I can't ..."), for tasks the rules forbid.
def refused(text: str) -> str | None:
    """The words with which ``text`` says the agent will not do something, or None
    (:func:`simulator.dialogue.reading.refusal`: "none, I'm afraid" and "I can't see any" are no refusal)."""
    return refusal(text)


def value_key(value: ExpectedValue) -> str:
    """How a value is named in ``missing_values`` and in its check: ``step:name=value``."""
    return f"{value.step}:{value.name}={value.value!r}"


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of every task and the full-state check of one dialogue."""

    outcomes: list[TaskOutcome]
    state: StateCheck


def check_state(
    scenario: Scenario, environment: Environment, final: Database, *, base_dir: Path | None = None
) -> StateCheck:
    """Compare ``final`` with the gold replay of ``scenario``.

    A gold write that fails gives the verdict ``error`` (the tasks do not fit the
    environment: no state to compare with). Raises VerificationError when the replay
    cannot start (the database, an initial action) or the final database cannot be read.
    """
    return _check_state(scenario, environment, final, None, base_dir)[0]


def _check_state(
    scenario: Scenario,
    environment: Environment,
    final: Database,
    events: Sequence[Event] | None,
    base_dir: Path | None,
) -> tuple[StateCheck, dict[str, Any], dict[str, int | None]]:
    started = time.perf_counter()
    # Without the events, any table may have changed.
    called = None if events is None else {e.tool for e in events if isinstance(e, ToolCall)}
    # Only the reads whose results the value checks are about (``anchors``) need running.
    wanted = {key for task in scenario.tasks for key in _anchored(task)}
    gold = replay_gold(scenario, environment, base_dir=base_dir, called=called, wanted=wanted)
    if gold.failure is not None:
        gold.close()
        state = StateCheck(
            verdict=Verdict.ERROR,
            gold_calls=gold.calls,
            detail=gold.failure,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
        )
        return state, gold.results, gold.new_keys
    try:
        try:
            rules = table_rules(gold.database, environment)
            changes = diff_states(gold.database, final, rules, gold.keys_before, only=gold.touched)
        except Exception as exc:  # the final database went away, or does not have the gold's tables
            raise VerificationError(f"the final database cannot be compared: {type(exc).__name__}: {exc}") from exc
    finally:
        gold.close()
    state = StateCheck(
        verdict=Verdict.FAIL if changes else Verdict.PASS,
        gold_calls=gold.calls,
        diff=changes[:MAX_CHANGES],
        more=max(0, len(changes) - MAX_CHANGES),
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
    )
    return state, gold.results, gold.new_keys


def _anchored(task: Task) -> set[str]:
    """The keys of the gold results ``anchors`` looks up for ``task``."""
    keys = {value.step for value in task.expected.values}
    if task.refinement is not None and task.refinement.values:
        keys.add(task.refinement.step + ":refined")
    if task.forbidden is not None:  # the rows the refusal is about (``_refused_rows``)
        keys.update({ref.step for ref in task.forbidden.refs.values()} | {step.id for step in task.chain})
    return keys


def _refused_rows(task: Task, results: dict[str, Any]) -> list[tuple[str, dict[str, Any]]] | None:
    """The rows a forbidden request is about, as the gold replay read them: (key field, row).

    The forbidden call names its row by a reference to a step's result (``refs``) or by a key
    it states (``arguments``). The row is the one the task's own gold reads show (the latest),
    as it is when the task is asked; else the referenced step's. None: the task names no
    forbidden call (a refusal written by hand), so no row is known.
    """
    forbidden = task.forbidden
    if forbidden is None:
        return None
    keys: list[tuple[str, Any, dict[str, Any] | None]] = []
    for ref in forbidden.refs.values():
        rows = result_rows(results.get(ref.step))
        if ref.row < len(rows) and ref.field in rows[ref.row]:
            keys.append((ref.field, rows[ref.row][ref.field], rows[ref.row]))
    if not forbidden.refs:
        keys = [(name, value, None) for name, value in forbidden.arguments.items()]
    found: list[tuple[str, dict[str, Any]]] = []
    for name, value, referenced in keys:
        own = (find_row(results.get(step.id), name, value) for step in reversed(task.chain))
        row = next((r for r in own if r is not None), referenced)
        if row is not None:
            found.append((name, row))
    return found


def anchors(
    task: Task,
    results: dict[str, Any],
    new_keys: dict[str, int | None] | None = None,
    mode: Mode = Mode.USER_ORIENTED,
) -> list[tuple[ExpectedValue, Anchor | None]]:
    """Each value the agent must say for ``task`` (``expected_values``), with the gold call and
    result it is about."""
    steps = {s.id: s for s in task.chain}
    out: list[tuple[ExpectedValue, Anchor | None]] = []
    ref = task.refinement
    for value in task.expected.values:
        if mode is Mode.TASK_ORIENTED and ref is not None and value.step == ref.step:
            continue  # asked for refined from the start (``expected_values``)
        step = steps.get(value.step)
        found = results.get(value.step)
        anchor = None
        if step is not None and found is not None:
            args = dict(step.resolved or step.arguments)
            anchor = Anchor(tool=step.tool, arguments=args, result=found, new_keys=new_keys or {})
        out.append((value, anchor))
    if ref is not None:
        step = steps.get(ref.step)
        found = results.get(ref.step + ":refined")
        for value in ref.values:
            anchor = None
            if step is not None and found is not None:
                args = {**(step.resolved or step.arguments), **ref.arguments}
                anchor = Anchor(tool=step.tool, arguments=args, result=found, new_keys=new_keys or {})
            out.append((value, anchor))
    return out


def verify_dialogue(
    scenario: Scenario,
    environment: Environment,
    final: Database,
    events: Sequence[Event],
    *,
    base_dir: Path | None = None,
) -> Verification:
    """Check every task of a finished dialogue (see the module docstring).

    Raises VerificationError when the checks cannot be carried out at all (the replay
    cannot start, the final database cannot be read, an assertion's query fails).
    """
    state, results, new_keys = _check_state(scenario, environment, final, events, base_dir)
    grounding = Grounding.of(events, [t.id for t in scenario.tasks])
    outcomes = []
    for task in scenario.tasks:
        checks: list[Check] = []
        if writes(task, environment):
            checks.append(_state_check(state))
            checks.extend(_write_checks(grounding, task, environment, new_keys))
        elif task.expected.refusal:
            checks.append(_state_check(state))
        if task.expected.refusal:
            checks.append(_refusal_check(grounding, task, _refused_rows(task, results), new_keys))
        try:
            for assertion in task.expected.assertions:
                ok = check_assertion(final.query, assertion)
                checks.append(
                    Check(
                        kind=CheckKind.ASSERTION,
                        name=assertion.description,
                        verdict=Verdict.PASS if ok else Verdict.FAIL,
                        expected=assertion.expected,
                    )
                )
        except Exception as exc:
            raise VerificationError(f"task {task.id}: an assertion cannot be checked: {exc}") from exc
        checks.extend(
            _value_check(grounding, task, v, anchor) for v, anchor in anchors(task, results, new_keys, scenario.mode)
        )
        if not checks:  # nothing to check cannot count as done
            checks.append(nothing_to_check("the task has no assertion, no value and no write to check"))
        outcomes.append(_outcome(task.id, checks))
    return Verification(outcomes=outcomes, state=state)


def nothing_to_check(detail: str) -> Check:
    """The failed check of a task with nothing else to check: it cannot count as done."""
    return Check(kind=CheckKind.ASSERTION, name="checkable outcome", verdict=Verdict.FAIL, detail=detail)


def _state_check(state: StateCheck) -> Check:
    if state.verdict is Verdict.ERROR:
        detail = f"the state cannot be compared: {state.detail}"
    elif state.verdict is Verdict.PASS:
        detail = f"the final database equals the replay of {state.gold_calls} gold call(s)"
    else:
        n = len(state.diff) + state.more
        detail = f"{n} difference(s) from the replay of {state.gold_calls} gold call(s); no write can be attributed"
    return Check(kind=CheckKind.STATE, name="full state", verdict=state.verdict, detail=detail, diff=state.diff)


def _write_checks(
    grounding: Grounding, task: Task, environment: Environment, new_keys: dict[str, int | None]
) -> list[Check]:
    """One check per write step: the dialogue really made it, in the task's part. The state
    check cannot see a write whose effect a later one undid (a row created, then deleted)."""
    checks = []
    for step in task.chain:
        if not _is_write(environment, step.tool):
            continue
        args = dict(step.resolved or step.arguments)
        found = grounding.write_made(task.id, step.tool, args, new_keys)
        name = f"{step.id}:{step.tool}"
        if found is None:
            checks.append(
                Check(
                    kind=CheckKind.CALL,
                    name=name,
                    verdict=Verdict.FAIL,
                    expected=args,
                    detail="no successful call of the tool that changed a row with these arguments, in the task's part",
                )
            )
        else:
            evidence = Evidence(result=found, said=step.tool)
            checks.append(
                Check(kind=CheckKind.CALL, name=name, verdict=Verdict.PASS, expected=args, evidence=[evidence])
            )
    return checks


def _refusal_check(
    grounding: Grounding,
    task: Task,
    rows: list[tuple[str, dict[str, Any]]] | None,
    new_keys: dict[str, int | None],
) -> Check:
    """The agent said, in the task's part, that it would not do what the rules forbid — after it
    looked: a successful tool result in the task's part that showed the row the request is
    about (``rows``, from the gold replay) comes before the refusal. A refusal made without
    looking is a guess (an agent that refuses everything would pass every forbidden request;
    what is forbidden depends on the rows: whose they are, their status), and so is one made
    after looking at something else. ``rows`` None (a refusal written by hand, with no
    forbidden call): any successful result of the task's part counts as looking.
    """
    if rows == []:
        return Check(
            kind=CheckKind.ASSERTION,
            name="refused",
            verdict=Verdict.ERROR,
            detail=f"the gold replay did not find the row the request is about ({task.expected.refusal})",
        )
    results = [
        i
        for i in grounding.result_parts.get(task.id, [])
        if isinstance(r := grounding.events[i], ToolResult) and not r.is_error
    ]
    looked = [
        i
        for i in results
        if rows is None or any(_shows(grounding.events[i], row, name, new_keys) for name, row in rows)
    ]
    first_refusal = None
    for index in grounding.parts.get(task.id, []):
        message = grounding.events[index]
        assert isinstance(message, AgentMessage)
        marker = refused(message.text)
        if marker is None:
            continue
        before = [i for i in looked if i < index]
        if not before:
            first_refusal = first_refusal if first_refusal is not None else index
            continue
        return Check(
            kind=CheckKind.ASSERTION,
            name="refused",
            verdict=Verdict.PASS,
            detail=f"event {index}: {marker!r} ({task.expected.refusal}), after result {before[-1]}"
            + (f", which showed {_row_names(rows)}" if rows else ""),
        )
    detail = f"the agent did not refuse: {task.expected.refusal}"
    if first_refusal is not None:
        shown = "any tool result of the task's part"
        if rows and any(i < first_refusal for i in results):
            shown = f"a tool result of the task's part showed {_row_names(rows)}"
        detail = f"event {first_refusal}: a refusal before {shown} ({task.expected.refusal})"
    return Check(kind=CheckKind.ASSERTION, name="refused", verdict=Verdict.FAIL, detail=detail)


def _shows(event: Event, row: dict[str, Any], name: str, new_keys: dict[str, int | None]) -> bool:
    return isinstance(event, ToolResult) and shows_row(event, row, name, new_keys)


def _row_names(rows: list[tuple[str, dict[str, Any]]]) -> str:
    return " and ".join(f"the row with {name}={row[name]!r}" for name, row in rows)


def _is_write(environment: Environment, tool: str) -> bool:
    try:
        return environment.tool(tool).effect is Effect.WRITE
    except KeyError:
        return False


def _value_check(grounding: Grounding, task: Task, value: ExpectedValue, anchor: Anchor | None) -> Check:
    evidence = grounding.find(task.id, value.value, value.name, anchor)
    if evidence is not None:
        return Check(
            kind=CheckKind.VALUE, name=value_key(value), verdict=Verdict.PASS, expected=value.value, evidence=[evidence]
        )
    where = grounding.said_anywhere(value.value)
    if where is None:
        detail = "never said"
    elif not grounding.parts.get(task.id):
        detail = f"said (event {where}) but the task never started"
    else:
        detail = f"said (event {where}), but not in the task's part after a tool result that showed it"
    return Check(kind=CheckKind.VALUE, name=value_key(value), verdict=Verdict.FAIL, expected=value.value, detail=detail)


def _outcome(task_id: str, checks: list[Check]) -> TaskOutcome:
    return TaskOutcome(
        task_id=task_id,
        success=all(c.verdict is Verdict.PASS for c in checks),
        failed_assertions=[c.name for c in checks if c.kind is CheckKind.ASSERTION and c.verdict is not Verdict.PASS],
        missing_values=[c.name for c in checks if c.kind is CheckKind.VALUE and c.verdict is not Verdict.PASS],
        checks=checks,
    )


def unverified(scenario: Scenario, detail: str) -> list[TaskOutcome]:
    """Outcomes for tasks that could not be checked at all: every check an error, every task failed."""
    outcomes = []
    for task in scenario.tasks:
        checks = [Check(kind=CheckKind.STATE, name="full state", verdict=Verdict.ERROR, detail=detail)]
        checks += [
            Check(kind=CheckKind.ASSERTION, name=a.description, verdict=Verdict.ERROR, detail=detail)
            for a in task.expected.assertions
        ]
        if task.expected.refusal:
            checks.append(Check(kind=CheckKind.ASSERTION, name="refused", verdict=Verdict.ERROR, detail=detail))
        checks += [
            Check(kind=CheckKind.VALUE, name=value_key(v), verdict=Verdict.ERROR, detail=detail)
            for v in expected_values(task, scenario.mode)
        ]
        outcomes.append(_outcome(task.id, checks))
    return outcomes


def dialogue_succeeded(
    termination: TerminationReason, outcomes: Sequence[TaskOutcome], state: StateCheck | None
) -> bool:
    """The one definition of a successful dialogue: the user was done, every task passed and
    the final state matched the gold replay (unknown, in records from before the check, counts
    as matched)."""
    return (
        termination is TerminationReason.USER_DONE
        and all(o.success for o in outcomes)
        and (state is None or state.verdict is Verdict.PASS)
    )
