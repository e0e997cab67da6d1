"""The LLM task generator: descriptive end goals grounded in real rows, validated by running them.

The model sees the environment's schema (DDL), a few real rows per table and the tools,
and writes tasks as structured output: a goal, a difficulty, the sub-requests the user
will make, the facts the user knows, the tool calls that accomplish the task (an
argument may come from an earlier call's result: ``{"$from": 0, "field": "order_id"}``),
the result fields the assistant must report, and rubric items.

Nothing the model writes is trusted: every task's calls are executed in order on a
private copy of the database with the real tools. A task whose call fails is sent back
once with the error for repair, then dropped. The expected outcome is what really ran:
the reported values from each call's first row, and for writes a check on the written
row (by primary key) right after the step and on the final state. Tasks run in order on
one copy, so later tasks see earlier writes, as with the offline planner; the result is
the same :class:`~schemas.Task` the offline brains and the verifier already use.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

from schemas import (
    ChainStep,
    Difficulty,
    Effect,
    Environment,
    ExpectedOutcome,
    ExpectedValue,
    Fact,
    RubricItem,
    RubricKind,
    SqlAssertion,
    SubRequest,
    Task,
    ToolSpec,
    ValueRef,
)
from schemas.errors import ToolError
from simulator.log import get_logger
from simulator.offline.language import entity, format_value, label
from simulator.offline.planner import final_assertion, rows_of
from simulator.offline.schema_view import Schema, read_schema
from simulator.providers import ChatMessage, LLMClient, Request, StructuredOutputError, complete_structured
from toolservers.database import Database, open_database
from toolservers.executor import ToolExecutor
from toolservers.sql import quote_ident

__all__ = [
    "CallPlan",
    "FactPlan",
    "RubricPlan",
    "SubRequestPlan",
    "TaskBatch",
    "TaskPlan",
    "describe_environment",
    "generate_tasks",
]

log = get_logger(__name__)

#: Rows shown per table in the prompt.
SAMPLE_ROWS = 3
_WRITTEN = re.compile(
    r"\b(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|REPLACE\s+INTO|UPDATE(?:\s+OR\s+\w+)?|DELETE\s+FROM)\s+[\"`\[]?(\w+)",
    re.IGNORECASE,
)
_INTENTS = {"get": "lookup", "search": "search", "list_related": "list_related", "count": "count"}
_INTENTS |= {"create": "create", "update": "update", "delete": "delete"}


class CallPlan(msgspec.Struct, forbid_unknown_fields=True):
    """One tool call; an argument ``{"$from": i, "field": "col"}`` takes call i's result value."""

    tool: str
    arguments: dict[str, Any] = {}
    #: Result fields (of the first row) the assistant must tell the user.
    report: list[str] = []


class SubRequestPlan(msgspec.Struct, forbid_unknown_fields=True):
    text: str
    #: Indexes of the calls this request covers.
    calls: list[int] = []


class FactPlan(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    value: Any
    description: str = ""


class RubricPlan(msgspec.Struct, forbid_unknown_fields=True):
    kind: RubricKind
    text: str


class TaskPlan(msgspec.Struct, forbid_unknown_fields=True):
    goal: str
    sub_requests: list[SubRequestPlan]
    calls: list[CallPlan]
    difficulty: Difficulty = Difficulty.MEDIUM
    facts: list[FactPlan] = []
    rubric: list[RubricPlan] = []
    #: Index of an earlier task of the batch this one follows up on.
    follows: int | None = None


class TaskBatch(msgspec.Struct, forbid_unknown_fields=True):
    tasks: list[TaskPlan]


class _Invalid(Exception):
    """The task cannot be carried out as written; the message says why (sent back for repair)."""


@dataclass(slots=True)
class _Built:
    task: Task
    checks: list[SqlAssertion] = field(default_factory=list)


def describe_environment(environment: Environment, db: Database, rng: random.Random) -> dict[str, str]:
    """The ``{schema}``, ``{rows}``, ``{tools}`` and ``{description}`` texts of the prompt."""
    ddl = [
        str(r[0]) + ";"
        for r in db.query("SELECT sql FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        if r[0]
    ]
    rows: list[str] = []
    names = [r[0] for r in db.query("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
    for name in sorted(names):
        cur = db.conn.execute(f"SELECT * FROM {quote_ident(name)} ORDER BY rowid LIMIT 200")
        cols = [d[0] for d in cur.description]
        found = cur.fetchall()
        picked = sorted(rng.sample(range(len(found)), min(SAMPLE_ROWS, len(found))))
        rows.append(f"-- {name}")
        rows += [json.dumps(dict(zip(cols, found[i], strict=True)), ensure_ascii=False, default=str) for i in picked]
    tools = [
        f"- {t.name} ({t.effect}): {t.description}\n  parameters: {json.dumps(t.input_schema, ensure_ascii=False)}"
        for t in environment.tools
    ]
    return {
        "description": environment.description or environment.domain,
        "schema": "\n".join(ddl),
        "rows": "\n".join(rows),
        "tools": "\n".join(tools),
    }


async def generate_tasks(
    client: LLMClient, template: str, environment: Environment, *, count: int, rng: random.Random
) -> list[Task]:
    """Ask ``client`` for ``count`` tasks over ``environment`` and keep those that really run.

    ``template`` is the task generator prompt (placeholders ``{description}``,
    ``{schema}``, ``{rows}``, ``{tools}``, ``{count}``). Returns the valid tasks in order
    (possibly fewer than ``count``, possibly none). Raises StructuredOutputError when the
    model's reply cannot be decoded even after repair, and ProviderError subclasses.
    """
    db = open_database(environment.database)
    try:
        executor = ToolExecutor(environment, db, source=f"environment {environment.id}")
        schema = read_schema(environment, db)
        prompt = template.format(count=count, **describe_environment(environment, db, rng))
        messages = [ChatMessage.user(prompt)]
        batch = await complete_structured(client, Request(messages=messages), TaskBatch, name="tasks")
        messages.append(ChatMessage.assistant(msgspec.json.encode(batch).decode()))
        built: list[_Built] = []
        ids: dict[int, str] = {}
        for index, plan in enumerate(batch.tasks[:count]):
            task_id = f"t{len(built)}"
            try:
                done = _carry_out(plan, task_id, executor, schema, ids)
            except _Invalid as exc:
                problem = str(exc)
                log.info("task %d of %s failed (%s); asking for a repair", index, environment.id, problem)
                repair = [
                    *messages,
                    ChatMessage.user(
                        f"Task {index} (goal: {plan.goal[:200]!r}) could not be carried out: {problem}. "
                        "Reply with that one task corrected, as one JSON object with the same fields "
                        "(goal, difficulty, sub_requests, facts, calls, rubric)."
                    ),
                ]
                try:
                    fixed = await complete_structured(client, Request(messages=repair), TaskPlan, name="task")
                    done = _carry_out(fixed, task_id, executor, schema, ids)
                except (_Invalid, StructuredOutputError) as again:
                    log.warning("dropped task %d of %s after repair: %s", index, environment.id, again)
                    continue
            ids[index] = task_id
            built.append(done)
        return [_finish(b, db) for b in built]
    finally:
        db.close()


def _carry_out(plan: TaskPlan, task_id: str, executor: ToolExecutor, schema: Schema, ids: dict[int, str]) -> _Built:
    """Run ``plan``'s calls in order (kept on success, rolled back on failure) and build its task."""
    if not plan.calls:
        raise _Invalid("it has no calls; a task needs at least one tool call")
    if not plan.sub_requests:
        raise _Invalid("it has no sub_requests; the user needs at least one thing to ask for")
    db = executor.db
    db.conn.execute("SAVEPOINT llm_task")
    try:
        built = _run_calls(plan, task_id, executor, schema, ids)
    except BaseException:
        db.conn.execute("ROLLBACK TO llm_task")
        db.conn.execute("RELEASE llm_task")
        raise
    db.conn.execute("RELEASE llm_task")
    return built


def _run_calls(plan: TaskPlan, task_id: str, executor: ToolExecutor, schema: Schema, ids: dict[int, str]) -> _Built:
    tools = {t.name: t for t in executor.tools}
    steps: list[ChainStep] = []
    results: list[list[dict[str, Any]]] = []
    values: list[ExpectedValue] = []
    checks: list[SqlAssertion] = []
    for i, call in enumerate(plan.calls):
        sid = f"{task_id}.s{i}"
        tool = tools.get(call.tool)
        if tool is None:
            raise _Invalid(f"call {i} uses tool {call.tool!r}, which does not exist; the tools are: {', '.join(tools)}")
        literal: dict[str, Any] = {}
        refs: dict[str, ValueRef] = {}
        resolved: dict[str, Any] = {}
        for name, value in call.arguments.items():
            if isinstance(value, dict) and "$from" in value:
                ref, actual = _resolve(i, name, value, steps, results)
                refs[name] = ref
                resolved[name] = actual
            else:
                literal[name] = value
                resolved[name] = value
        target = _written(tool, schema)
        before = _row(executor.db, schema, target, resolved) if target else None
        try:
            outcome = executor.call(tool.name, resolved)
        except ToolError as exc:
            raise _Invalid(f"call {i} ({tool.name} with {_json(resolved)}) failed: {exc}") from exc
        rows = rows_of(outcome.structured)
        for name in call.report:
            if not rows:
                raise _Invalid(f"call {i} ({tool.name}) returned no rows, so there is no {name!r} to report")
            if name not in rows[0]:
                raise _Invalid(
                    f"call {i} ({tool.name}) has no result field {name!r} to report; it has: {', '.join(rows[0])}"
                )
            values.append(ExpectedValue(step=sid, name=name, value=rows[0][name]))
        steps.append(
            ChainStep(id=sid, tool=tool.name, arguments=literal, refs=refs, report=list(call.report), resolved=resolved)
        )
        results.append(rows)
        if target is not None:
            check = _write_check(executor.db, sid, target, schema, resolved, rows, before)
            if check is not None:
                checks.append(check)
    subs = _sub_requests(plan, task_id, steps, tools)
    facts = [Fact(name=f.name, value=f.value, description=f.description or f"the {label(f.name)}") for f in plan.facts]
    rubric = [RubricItem(r.kind, r.text) for r in plan.rubric]
    follows = ids.get(plan.follows) if plan.follows is not None else None
    task = Task(
        id=task_id,
        goal=plan.goal,
        chain=steps,
        sub_requests=subs,
        facts=facts,
        difficulty=plan.difficulty,
        rubric=rubric,
        expected=ExpectedOutcome(step_checks=checks, values=values),
        follows=follows,
    )
    return _Built(task, checks)


def _resolve(
    i: int, name: str, value: dict[str, Any], steps: list[ChainStep], results: list[list[dict[str, Any]]]
) -> tuple[ValueRef, Any]:
    source, column, row = value.get("$from"), value.get("field"), value.get("row", 0)
    if not isinstance(source, int) or isinstance(source, bool) or not 0 <= source < i:
        raise _Invalid(f"call {i}, argument {name!r}: $from must be the index of an earlier call (0 to {i - 1})")
    if not isinstance(column, str) or not isinstance(row, int):
        raise _Invalid(f"call {i}, argument {name!r}: a $from reference needs a 'field' (a result column name)")
    rows = results[source]
    if not 0 <= row < len(rows):
        raise _Invalid(f"call {i}, argument {name!r}: call {source} returned {len(rows)} rows, no row {row}")
    if column not in rows[row]:
        raise _Invalid(
            f"call {i}, argument {name!r}: call {source}'s result has no field {column!r}; "
            f"it has: {', '.join(rows[row])}"
        )
    return ValueRef(step=steps[source].id, field=column, row=row), rows[row][column]


def _written(tool: ToolSpec, schema: Schema) -> str | None:
    """The table a write tool changes, when it can be told and has a single-column primary key."""
    if tool.effect is not Effect.WRITE:
        return None
    candidates = [tool.table] if tool.table else []
    candidates += [m.group(1) for stmt in tool.implementation.statements for m in _WRITTEN.finditer(stmt)]
    for name in candidates:
        table = schema.tables.get(name or "")
        if table is not None and table.pk is not None:
            return table.name
    return None


def _row(db: Database, schema: Schema, table: str, args: dict[str, Any]) -> dict[str, Any] | None:
    """The row of ``table`` the arguments name by primary key, before the call (None if unknown/absent)."""
    pk = schema.tables[table].pk
    if pk is None or pk not in args:
        return None
    return _select(db, table, pk, args[pk])


def _select(db: Database, table: str, pk: str, key: Any) -> dict[str, Any] | None:
    cur = db.conn.execute(f"SELECT * FROM {quote_ident(table)} WHERE {quote_ident(pk)} = :pk", {"pk": key})
    cols = [d[0] for d in cur.description]
    found = cur.fetchone()
    return dict(zip(cols, found, strict=True)) if found is not None else None


def _write_check(
    db: Database,
    sid: str,
    table_name: str,
    schema: Schema,
    args: dict[str, Any],
    rows: list[dict[str, Any]],
    before: dict[str, Any] | None,
) -> SqlAssertion | None:
    """A check on the written row as the call left it; None when the row cannot be named or did not change."""
    table = schema.tables[table_name]
    pk = table.pk
    assert pk is not None
    if rows and pk in rows[0]:
        key = rows[0][pk]
    elif pk in args:
        key = args[pk]
    else:
        return None
    if key is None:
        return None
    shown = [c for c in (rows[0] if rows else {}) if c in table.columns] or list(table.columns)
    after = _select(db, table_name, pk, key)
    if after is not None and before is not None and all(after.get(c) == before.get(c) for c in shown):
        return None  # nothing observable changed: there is nothing to check
    if after is None and before is None:
        return None
    columns = ", ".join(quote_ident(c) for c in shown)
    what = f"{entity(table_name)} {format_value(key)}"
    description = f"{what} is as the change left it" if after is not None else f"{what} was removed"
    return SqlAssertion(
        description=description,
        sql=f"SELECT {columns} FROM {quote_ident(table_name)} WHERE {quote_ident(pk)} = :pk",
        params={"pk": key},
        expected=[[after[c] for c in shown]] if after is not None else [],
        step=sid,
    )


def _sub_requests(plan: TaskPlan, task_id: str, steps: list[ChainStep], tools: dict[str, ToolSpec]) -> list[SubRequest]:
    """The user's requests, each covering its calls; a call no request names joins the one before it."""
    n = len(steps)
    owner: dict[int, int] = {}
    for k, sub in enumerate(plan.sub_requests):
        for c in sub.calls:
            if 0 <= c < n and c not in owner:
                owner[c] = k
    if not owner:  # no call named: spread them, one request per call, the rest on the last
        last = len(plan.sub_requests) - 1
        owner = {c: min(c, last) for c in range(n)}
    current = 0
    for c in range(n):
        current = owner.setdefault(c, current)
    out: list[SubRequest] = []
    for k, sub in enumerate(plan.sub_requests):
        covered = [steps[c] for c in range(n) if owner[c] == k]
        if not covered:
            if out:  # a request with no call of its own: said together with the previous one
                prev = out[-1]
                out[-1] = msgspec.structs.replace(prev, text=f"{prev.text} {sub.text}")
            continue
        tool = tools[covered[-1].tool]
        intent = _INTENTS.get(tool.category) or ("update" if tool.effect is Effect.WRITE else "lookup")
        out.append(SubRequest(id=f"{task_id}.r{k}", steps=[s.id for s in covered], intent=intent, text=sub.text))
    if not out:
        raise _Invalid("no sub-request covers any call")
    return out


def _finish(built: _Built, db: Database) -> Task:
    """The task with its final-state assertions (every write check re-run once all tasks ran)."""
    assertions = [final_assertion(db, c) for c in built.checks]
    expected = msgspec.structs.replace(built.task.expected, assertions=assertions)
    return msgspec.structs.replace(built.task, expected=expected)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
