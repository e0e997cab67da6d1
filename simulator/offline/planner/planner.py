"""The planner: plans the tasks of one scenario, one kind of task at a time."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from schemas import (
    ChainStep,
    Difficulty,
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
from simulator.offline.language import entity, format_value, label
from simulator.offline.planner._base import (
    Anchor,
    Draft,
    Skip,
    final_assertion,
    q,
    rows_of,
    sentence,
    unique,
)
from simulator.offline.planner.count import count
from simulator.offline.planner.create import create
from simulator.offline.planner.delete import delete
from simulator.offline.planner.lookup import lookup
from simulator.offline.planner.related import related, related_update
from simulator.offline.planner.search import refine_search
from simulator.offline.planner.update import update
from simulator.offline.schema_view import Schema, Table
from toolservers.executor import ToolExecutor

__all__ = ["Kind", "Planner"]

#: One kind of task: adds its steps, sub-requests and checks to the draft, or raises Skip.
Kind = Callable[["Planner", Draft, Anchor | None], None]


class Planner:
    """Plans the tasks of one scenario on ``executor``'s database (a private copy)."""

    def __init__(self, environment: Environment, executor: ToolExecutor, schema: Schema, rng: random.Random) -> None:
        self.environment = environment
        self.executor = executor
        self.schema = schema
        self.rng = rng
        self.results: dict[str, list[dict[str, Any]]] = {}
        self._kinds: list[tuple[str, Kind, float]] = [
            ("lookup", lookup, 1.0),
            ("related", related, 1.2),
            ("update", update, 1.6),
            ("create", create, 1.0),
            ("refine", refine_search, 0.8),
            ("count", count, 0.5),
            ("delete", delete, 0.3),
            ("related_update", related_update, 0.8),
        ]

    def plan(self, count: int, *, follow_up_rate: float = 0.6) -> list[Task]:
        """Plan ``count`` tasks, executing them in order, then add final-state assertions."""
        drafts: list[Draft] = []
        anchors: list[Anchor] = []
        attempts = 0
        while len(drafts) < count and attempts < count * 12:
            attempts += 1
            task_id = f"t{len(drafts)}"
            anchor = None
            if anchors and self.rng.random() < follow_up_rate:
                anchor = self.rng.choice(anchors[-3:])
            draft = self._try_kinds(task_id, anchor)
            if draft is None:
                continue
            drafts.append(draft)
            anchors.extend(draft.anchors)
        return [self._finish(draft) for draft in drafts]

    def _try_kinds(self, task_id: str, anchor: Anchor | None) -> Draft | None:
        kinds = list(self._kinds)
        for _ in range(len(kinds)):
            names = [k[0] for k in kinds]
            weights = [k[2] for k in kinds]
            name = self.rng.choices(names, weights)[0]
            fn = next(k[1] for k in kinds if k[0] == name)
            kinds = [k for k in kinds if k[0] != name]
            draft = Draft(task_id=task_id, follows=anchor.step.split(".")[0] if anchor else None)
            savepoint = len(self.results)
            self.executor.db.conn.execute("SAVEPOINT plan")
            try:
                fn(self, draft, anchor)
            except Skip:
                self.executor.db.conn.execute("ROLLBACK TO plan")
                self.executor.db.conn.execute("RELEASE plan")
                for key in list(self.results)[savepoint:]:
                    del self.results[key]
                continue
            self.executor.db.conn.execute("RELEASE plan")
            if self.rng.random() < 0.45:
                self.merge_lookup(draft)
            if anchor is None or not any(anchor.step in str(s.refs) for s in draft.steps):
                draft.follows = None
            return draft
        return None

    def ask(self, d: Draft, sid: str, intent: str, phrasings: list[str], *, stated: list[str] | None = None) -> None:
        """Add the sub-request that asks for step ``sid``, in one of ``phrasings``."""
        d.subs.append(
            SubRequest(id=f"{sid}.r", steps=[sid], intent=intent, stated=stated or [], text=self.rng.choice(phrasings))
        )

    def merge_lookup(self, d: Draft) -> None:
        """Ask for a lookup and what follows it in one request, saying the key up front.

        That is how people often ask ("cancel my order ORD-1042"), and it makes the agent
        run several tools in a row for one request.
        """
        if len(d.subs) < 2 or d.subs[0].intent != "lookup":
            return
        first, second = d.subs[0], d.subs[1]
        lookup = next(s for s in d.steps if s.id == first.steps[0])
        follower = next(s for s in d.steps if s.id == second.steps[0])
        if not any(ref.step == lookup.id for ref in follower.refs.values()) or len(lookup.arguments) != 1:
            return
        ((key, value),) = lookup.arguments.items()
        table = self.environment.tool(lookup.tool).table or "record"
        lead = self.rng.choice(
            [
                f"About my {entity(table)} with {label(key)} {format_value(value)}:",
                f"It's regarding the {entity(table)} with {label(key)} {format_value(value)}.",
                f"My {entity(table)} — {label(key)} {format_value(value)}.",
            ]
        )
        merged = SubRequest(
            id=first.id,
            steps=[*first.steps, *second.steps],
            intent=second.intent,
            text=f"{lead} {second.text}",
            stated=[key, *second.stated],
        )
        d.subs[:2] = [merged]

    def find(
        self, d: Draft, table: Table, anchor: Anchor | None, *, report: int = 1
    ) -> tuple[ValueRef, dict[str, Any]]:
        """A reference to a row of ``table``: the anchor's, or found with a new lookup step."""
        if anchor is not None and anchor.table == table.name:
            return ValueRef(step=anchor.step, field=table.pk or "", row=anchor.index), anchor.row
        rows = self.executor.db.query(f'SELECT * FROM "{table.name}" ORDER BY rowid')
        if not rows:
            raise Skip
        cols = list(table.columns)
        target = dict(zip(cols, self.rng.choice(rows), strict=True))
        sid = d.step_id()
        search = self.schema.tools.get("search", table.name)
        get = self.schema.tools.get("get", table.name)
        key = table.key
        if key and search and key in search.input_schema.get("properties", {}):
            step = ChainStep(id=sid, tool=search.name, arguments={key: target[key]})
            found = self.run(step, {})
            if len(found) != 1 or (table.pk and found[0].get(table.pk) != target.get(table.pk)):
                raise Skip
            fact = key
        elif get is not None and table.pk is not None:
            step = ChainStep(id=sid, tool=get.name, arguments={table.pk: target[table.pk]})
            found = self.run(step, {})
            fact = table.pk
        else:
            raise Skip
        fields = self.report_fields(table, found[0], report)
        step.report = fields
        d.steps.append(step)
        d.facts[fact] = Fact(
            name=fact, value=target[fact], description=f"the {label(fact)} of your {entity(table.name)}"
        )
        self.ask(
            d,
            sid,
            "lookup",
            [
                f"I'd like to check on my {entity(table.name)}.",
                f"Can you pull up my {entity(table.name)}?",
                f"I need some details about a {entity(table.name)}.",
                f"Could you look up a {entity(table.name)} for me?",
                f"I have a question about my {entity(table.name)}.",
            ],
        )
        self.expect_values(d, sid, found[0], fields)
        return ValueRef(step=sid, field=table.pk or fact), found[0]

    def run(self, step: ChainStep, resolved: dict[str, Any]) -> list[dict[str, Any]]:
        args = dict(step.arguments)
        for name, ref in step.refs.items():
            args[name] = resolved[name] if name in resolved else self.results[ref.step][ref.row][ref.field]
        try:
            outcome = self.executor.call(step.tool, args)
        except ToolError as exc:
            raise Skip from exc
        rows = rows_of(outcome.structured)
        step.resolved = args
        self.results[step.id] = rows
        return rows

    def pick_table(self, fits: Callable[[Table], bool]) -> Table:
        options = [t for t in self.schema.tables.values() if fits(t)]
        if not options:
            raise Skip
        return self.rng.choice(options)

    def anchor_table(self, anchor: Anchor | None, fits: Callable[[Table], bool]) -> Table | None:
        if anchor is None:
            return None
        table = self.schema.tables.get(anchor.table)
        return table if table is not None and fits(table) else None

    def list_tool(self, child: str, column: str) -> ToolSpec | None:
        for tool in self.schema.tools.all("list_related", child):
            if column in tool.input_schema.get("required", []):
                return tool
        return None

    def report_fields(self, table: Table, row: dict[str, Any], n: int) -> list[str]:
        fields = [f for f in table.informative() if row.get(f) is not None]
        self.rng.shuffle(fields)
        return fields[:n]

    def expect_values(self, d: Draft, step: str, row: dict[str, Any], fields: list[str]) -> None:
        d.values.extend(ExpectedValue(step=step, name=f, value=row.get(f)) for f in fields)

    def updatable(self, table: Table, tool: ToolSpec) -> list[tuple[str, list[Any]]]:
        props = tool.input_schema.get("properties", {})
        out = []
        for col, values in table.enums.items():
            if col in props:
                allowed = props[col].get("enum") or values
                out.append((col, [v for v in allowed if v is not None]))
        return out

    def new_row_values(self, table: Table, tool: ToolSpec, *, skip: set[str]) -> dict[str, Any]:
        props = tool.input_schema.get("properties", {})
        required = set(tool.input_schema.get("required", []))
        sample = self.executor.db.query(f'SELECT * FROM "{table.name}" ORDER BY rowid')
        if not sample:
            raise Skip
        row = dict(zip(table.columns, self.rng.choice(sample), strict=True))
        args: dict[str, Any] = {}
        for name in props:
            if name in skip or name not in table.columns or (name not in required and name not in table.enums):
                continue
            col = table.columns[name]
            value = row.get(name)
            if col.pk or name in table.fks:
                if name in required:
                    raise Skip  # another parent would be needed; keep tasks simple
                continue
            if name in table.enums:
                value = self.rng.choice(table.enums[name])
            elif name == table.key or unique(self.executor, table, name):
                value = f"{value}-{self.rng.randrange(100, 999)}" if isinstance(value, str) else value
            if value is None:
                continue
            args[name] = value
        if not args:
            raise Skip
        return args

    def row_exists(self, step: str, table: str, values: dict[str, Any], description: str) -> SqlAssertion:
        """Whether a row with exactly these column values exists (1) or not (0)."""
        names = {c: f"v{i}" for i, c in enumerate(values)}
        where = " AND ".join(f"{q(c)} IS :{names[c]}" for c in values)
        return SqlAssertion(
            description=f"{description} exists",
            sql=f'SELECT EXISTS (SELECT 1 FROM "{table}" WHERE {where})',
            params={names[c]: v for c, v in values.items()},
            expected=[[1]],
            step=step,
        )

    def field_check(self, step: str, table: Table, column: str, pk: Any, value: Any) -> SqlAssertion:
        return SqlAssertion(
            description=f"{entity(table.name)} {pk} has {label(column)} {format_value(value)}",
            sql=f'SELECT "{column}" FROM "{table.name}" WHERE "{table.pk}" = :pk',
            params={"pk": pk},
            expected=[[value]],
            step=step,
        )

    def _finish(self, d: Draft) -> Task:
        assertions = []
        for i, check in enumerate(d.checks):
            if i in d.finals:
                assertions.append(d.finals[i]())
                continue
            assertions.append(final_assertion(self.executor.db, check))
        n = len(d.steps)
        difficulty = Difficulty.EASY if n <= 1 else Difficulty.MEDIUM if n <= 2 else Difficulty.HARD
        rubric = [RubricItem(RubricKind.CRITICAL, a.description) for a in assertions]
        rubric += [
            RubricItem(RubricKind.CRITICAL, f"tells the user the {label(v.name)} ({format_value(v.value)})")
            for v in d.values
        ]
        rubric.append(RubricItem(RubricKind.STRUCTURAL, "asks for missing details instead of guessing them"))
        rubric.append(RubricItem(RubricKind.NON_CRITICAL, "summarises each result in plain language"))
        facts = ", ".join(f"{f.description} is {format_value(f.value)}" for f in d.facts.values())
        goal = "You want to " + sentence(d.purposes) + "." + (f" You know that {facts}." if facts else "")
        if d.refinement is not None:
            goal += f" Once you see the results, you want them {d.refinement.description}."
        if d.change_of_mind is not None:
            goal += (
                f" You will first ask for {label(d.change_of_mind.argument)} "
                f"{format_value(d.change_of_mind.first)}, then change your mind."
            )
        return Task(
            id=d.task_id,
            goal=goal,
            chain=d.steps,
            sub_requests=d.subs,
            facts=list(d.facts.values()),
            difficulty=difficulty,
            rubric=rubric,
            expected=ExpectedOutcome(assertions=assertions, step_checks=d.checks, values=d.values),
            follows=d.follows,
            change_of_mind=d.change_of_mind,
            refinement=d.refinement,
        )
