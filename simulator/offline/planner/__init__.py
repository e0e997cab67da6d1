"""Offline task generation: chains of tool calls sampled over real rows.

A ``Planner`` works on a private copy of the environment's database. It samples a kind
of task (look something up, follow a relation, change a field, add a row, remove one,
count, search and re-sort), picks real rows, and executes each step as it plans it, so
later steps can use earlier results and the expected outcome is what really happened:
values the agent must say, checks right after each write, and assertions on the final
state once every task of the scenario has run. Tasks can follow up on an earlier task's
rows (``anchor``), which is how related and follow-up tasks chain in one dialogue.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from schemas import (
    ChainStep,
    ChangeOfMind,
    Difficulty,
    Environment,
    ExpectedOutcome,
    ExpectedValue,
    Fact,
    Refinement,
    RubricItem,
    RubricKind,
    SqlAssertion,
    SubRequest,
    Task,
    ToolSpec,
    ValueRef,
)
from schemas.errors import ToolError
from simulator.offline.language import entity, entity_plural, format_value, label
from simulator.offline.schema_view import Schema, Table
from toolservers.database import Database
from toolservers.executor import ToolExecutor

__all__ = ["Anchor", "Planner", "final_assertion", "rows_of"]


def rows_of(structured: Any) -> list[dict[str, Any]]:
    """The rows of a tool result, whatever its shape."""
    if isinstance(structured, dict):
        if isinstance(structured.get("rows"), list):
            return [r for r in structured["rows"] if isinstance(r, dict)]
        if "row" in structured and len(structured) == 1:
            return [structured["row"]] if isinstance(structured["row"], dict) else []
        return [structured]
    return []


def final_assertion(db: Database, check: SqlAssertion) -> SqlAssertion:
    """``check``'s query as a final-state assertion: expecting what it returns on ``db`` now."""
    rows = [list(r) for r in db.query(check.sql, check.params)]
    return SqlAssertion(description=check.description, sql=check.sql, params=check.params, expected=rows)


@dataclass(frozen=True, slots=True)
class Anchor:
    """A row an earlier task found: later tasks may build on it."""

    step: str
    table: str
    row: dict[str, Any]
    index: int = 0


class _Skip(Exception):
    """This kind of task does not fit here; try another."""


@dataclass(slots=True)
class _Draft:
    """A task under construction."""

    task_id: str
    steps: list[ChainStep] = field(default_factory=list)
    subs: list[SubRequest] = field(default_factory=list)
    facts: dict[str, Fact] = field(default_factory=dict)
    values: list[ExpectedValue] = field(default_factory=list)
    checks: list[SqlAssertion] = field(default_factory=list)
    #: Checks whose final-state form is not the same query re-run: index in ``checks`` -> builder.
    finals: dict[int, Callable[[], SqlAssertion]] = field(default_factory=dict)
    purposes: list[str] = field(default_factory=list)
    anchors: list[Anchor] = field(default_factory=list)
    change_of_mind: ChangeOfMind | None = None
    refinement: Refinement | None = None
    follows: str | None = None

    def step_id(self) -> str:
        return f"{self.task_id}.s{len(self.steps)}"


class Planner:
    """Plans the tasks of one scenario on ``executor``'s database (a private copy)."""

    def __init__(self, environment: Environment, executor: ToolExecutor, schema: Schema, rng: random.Random) -> None:
        self.environment = environment
        self.executor = executor
        self.schema = schema
        self.rng = rng
        self.results: dict[str, list[dict[str, Any]]] = {}
        self._kinds: list[tuple[str, Callable[[_Draft, Anchor | None], None], float]] = [
            ("lookup", self._lookup, 1.0),
            ("related", self._related, 1.2),
            ("update", self._update, 1.6),
            ("create", self._create, 1.0),
            ("refine", self._refine_search, 0.8),
            ("count", self._count, 0.5),
            ("delete", self._delete, 0.3),
            ("related_update", self._related_update, 0.8),
        ]

    # ------------------------------------------------------------------ public
    def plan(self, count: int, *, follow_up_rate: float = 0.6) -> list[Task]:
        """Plan ``count`` tasks, executing them in order, then add final-state assertions."""
        drafts: list[_Draft] = []
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

    # ------------------------------------------------------------------ kinds
    def _try_kinds(self, task_id: str, anchor: Anchor | None) -> _Draft | None:
        kinds = list(self._kinds)
        for _ in range(len(kinds)):
            names = [k[0] for k in kinds]
            weights = [k[2] for k in kinds]
            name = self.rng.choices(names, weights)[0]
            fn = next(k[1] for k in kinds if k[0] == name)
            kinds = [k for k in kinds if k[0] != name]
            draft = _Draft(task_id=task_id, follows=anchor.step.split(".")[0] if anchor else None)
            savepoint = len(self.results)
            self.executor.db.conn.execute("SAVEPOINT plan")
            try:
                fn(draft, anchor)
            except _Skip:
                self.executor.db.conn.execute("ROLLBACK TO plan")
                self.executor.db.conn.execute("RELEASE plan")
                for key in list(self.results)[savepoint:]:
                    del self.results[key]
                continue
            self.executor.db.conn.execute("RELEASE plan")
            if self.rng.random() < 0.45:
                self._merge_lookup(draft)
            if anchor is None or not any(anchor.step in str(s.refs) for s in draft.steps):
                draft.follows = None
            return draft
        return None

    def _lookup(self, d: _Draft, anchor: Anchor | None) -> None:
        table = self._pick_table(lambda t: bool(t.informative()) and t.rows > 0)
        ref, row = self._find(d, table, None, report=2)
        fields = d.steps[-1].report
        d.purposes.append(f"find out the {_words(fields)} of your {entity(table.name)}")
        d.anchors.append(Anchor(ref.step, table.name, row))

    def _related(self, d: _Draft, anchor: Anchor | None) -> None:
        def fits(t: Table) -> bool:
            return t.rows > 0 and any(self._list_tool(c, col) for c, col in self.schema.children(t.name))

        parent = self._anchor_table(anchor, fits) or self._pick_table(fits)
        ref, prow = self._find(d, parent, anchor)
        options = [(c, col, tool) for c, col in self.schema.children(parent.name) if (tool := self._list_tool(c, col))]
        child_name, fk, tool = self.rng.choice(options)
        child = self.schema.tables[child_name]
        pk_field = parent.fks.get(fk, (None, None))[1] or parent.pk or ""
        sid = d.step_id()
        step = ChainStep(id=sid, tool=tool.name, refs={fk: ValueRef(step=ref.step, field=pk_field, row=ref.row)})
        rows = self._run(step, {fk: prow.get(pk_field)})
        if not rows:
            raise _Skip
        fields = self._report_fields(child, rows[0], 1)
        step.report = fields
        d.steps.append(step)
        self._ask(
            d,
            sid,
            "list_related",
            [
                f"Which {entity_plural(child_name)} does that {entity(parent.name)} have?",
                f"Can you list the {entity_plural(child_name)} for it?",
                f"I'd like to see the {entity_plural(child_name)} on that {entity(parent.name)}.",
            ],
        )
        d.values.append(ExpectedValue(step=sid, name="count", value=len(rows)))
        self._expect_values(d, sid, rows[0], fields)
        d.purposes.append(f"see the {entity_plural(child_name)} of that {entity(parent.name)}")
        d.anchors.append(Anchor(sid, child_name, rows[0]))

    def _related_update(self, d: _Draft, anchor: Anchor | None) -> None:
        """Follow a relation, then change the first related row: a chain of three calls."""
        self._related(d, anchor)
        first = d.anchors[-1]
        table = self.schema.tables[first.table]
        tool = self.schema.tools.get("update", table.name)
        if tool is None or table.pk is None or not self._updatable(table, tool):
            raise _Skip
        self._update(d, first, subject="the first one's")

    def _update(self, d: _Draft, anchor: Anchor | None, *, subject: str = "its") -> None:
        def fits(t: Table) -> bool:
            tool = self.schema.tools.get("update", t.name)
            return tool is not None and t.rows > 0 and t.pk is not None and bool(self._updatable(t, tool))

        table = self._anchor_table(anchor, fits) or self._pick_table(fits)
        tool = self.schema.tools.get("update", table.name)
        assert tool is not None and table.pk is not None
        ref, row = self._find(d, table, anchor)
        column, values = self.rng.choice(self._updatable(table, tool))
        choices = [v for v in values if v != row.get(column)]
        if not choices:
            raise _Skip
        final = self.rng.choice(choices)
        sid = d.step_id()
        step = ChainStep(id=sid, tool=tool.name, arguments={column: final}, refs={table.pk: ref}, report=[column])
        first = None
        others = [v for v in choices if v != final]
        if others and self.rng.random() < 0.35:
            first = self.rng.choice(others)
            self._run(
                ChainStep(id=sid, tool=tool.name, arguments={column: first}, refs=step.refs),
                {table.pk: row[table.pk]},
            )
            d.change_of_mind = ChangeOfMind(step=sid, argument=column, first=first)
        self._run(step, {table.pk: row[table.pk]})
        d.steps.append(step)
        said = first if first is not None else final
        self._ask(
            d,
            sid,
            "update",
            [
                f"Please change {subject} {label(column)} to {format_value(said)}.",
                f"I need the {label(column)} set to {format_value(said)}.",
                f"Can you update the {label(column)} to {format_value(said)}?",
            ],
            stated=[column],
        )
        d.values.append(ExpectedValue(step=sid, name=column, value=final))
        d.checks.append(self._field_check(sid, table, column, row[table.pk], final))
        d.purposes.append(f"change the {label(column)} of that {entity(table.name)} to {format_value(final)}")

    def _create(self, d: _Draft, anchor: Anchor | None) -> None:
        def fits(t: Table) -> bool:
            return any(
                self.schema.tools.get("create", c) is not None and self.schema.tables[c].rows > 0
                for c, _ in self.schema.children(t.name)
            )

        parent = self._anchor_table(anchor, fits) or self._pick_table(fits)
        options = [(c, col) for c, col in self.schema.children(parent.name) if self.schema.tools.get("create", c)]
        child_name, fk = self.rng.choice(options)
        child = self.schema.tables[child_name]
        tool = self.schema.tools.get("create", child_name)
        assert tool is not None
        ref, prow = self._find(d, parent, anchor)
        pk_field = child.fks[fk][1] or parent.pk or ""
        args = self._new_row_values(child, tool, skip={fk})
        sid = d.step_id()
        step = ChainStep(id=sid, tool=tool.name, arguments=args, refs={fk: ValueRef(step=ref.step, field=pk_field)})
        probe = self._row_exists(sid, child_name, {fk: prow.get(pk_field), **args}, "")
        before = self.executor.db.query(probe.sql, probe.params)
        rows = self._run(step, {fk: prow.get(pk_field)})
        if not rows:
            raise _Skip
        shown = [k for k in args if k in child.informative()] or list(args)
        step.report = shown[:2]
        d.steps.append(step)
        stated = shown[:1]
        self._ask(
            d,
            sid,
            "create",
            [
                f"I'd like to add a new {entity(child_name)} to it, with {_pairs(args, stated)}.",
                f"Please create a {entity(child_name)} for it — {_pairs(args, stated)}.",
                f"Can you set up a new {entity(child_name)} there? {_pairs(args, stated).capitalize()}.",
            ],
            stated=stated,
        )
        for name in args:
            if name not in stated:
                d.facts[name] = Fact(name=name, value=args[name], description=f"the {label(name)} you want")
        if child.pk is None or child.pk not in rows[0]:
            raise _Skip
        columns = [fk, *args]
        values = {c: rows[0].get(c) for c in columns}
        check = self._row_exists(sid, child_name, values, f"a {entity(child_name)} with {_pairs(args, list(args))}")
        if before[0][0]:
            raise _Skip  # an identical row was already there: the task would check nothing
        d.checks.append(check)
        new_key = rows[0][child.pk]

        def final() -> SqlAssertion:
            # The row as the whole scenario leaves it (a later task may change it), found by content.
            now = self.executor.db.query(
                f'SELECT {", ".join(_q(c) for c in columns)} FROM "{child_name}" WHERE "{child.pk}" = :pk',
                {"pk": new_key},
            )
            if not now:  # deleted later: the final state is that it is gone
                return SqlAssertion(
                    description=check.description + " (then removed)",
                    sql=check.sql,
                    params=check.params,
                    expected=[[0]],
                )
            return self._row_exists(sid, child_name, dict(zip(columns, now[0], strict=True)), check.description)

        d.finals[len(d.checks) - 1] = final
        for name in step.report:
            d.values.append(ExpectedValue(step=sid, name=name, value=args[name]))
        d.purposes.append(f"add a {entity(child_name)} ({_pairs(args, list(args))}) to that {entity(parent.name)}")
        d.anchors.append(Anchor(sid, child_name, rows[0]))

    def _delete(self, d: _Draft, anchor: Anchor | None) -> None:
        def fits(t: Table) -> bool:
            return self.schema.tools.get("delete", t.name) is not None and t.pk is not None and t.rows > 3

        table = self._anchor_table(anchor, fits) or self._pick_table(fits)
        tool = self.schema.tools.get("delete", table.name)
        assert tool is not None and table.pk is not None
        ref, row = self._find(d, table, anchor)
        for child, col in self.schema.children(table.name):
            if self.executor.db.query(f'SELECT 1 FROM "{child}" WHERE "{col}" = :pk LIMIT 1', {"pk": row[table.pk]}):
                raise _Skip
        sid = d.step_id()
        step = ChainStep(id=sid, tool=tool.name, refs={table.pk: ref})
        self._run(step, {table.pk: row[table.pk]})
        d.steps.append(step)
        self._ask(
            d,
            sid,
            "delete",
            [
                f"Please delete that {entity(table.name)}.",
                f"I want that {entity(table.name)} removed.",
            ],
        )
        d.checks.append(
            SqlAssertion(
                description=f"{entity(table.name)} {row[table.pk]} no longer exists",
                sql=f'SELECT COUNT(*) FROM "{table.name}" WHERE "{table.pk}" = :pk',
                params={"pk": row[table.pk]},
                expected=[[0]],
                step=sid,
            )
        )
        d.purposes.append(f"remove that {entity(table.name)}")

    def _count(self, d: _Draft, anchor: Anchor | None) -> None:
        def fits(t: Table) -> bool:
            tool = self.schema.tools.get("count", t.name)
            props = tool.input_schema.get("properties", {}) if tool else {}
            return t.rows > 0 and any(c in props for c in t.enums)

        table = self._pick_table(fits)
        tool = self.schema.tools.get("count", table.name)
        assert tool is not None
        props = tool.input_schema.get("properties", {})
        column = self.rng.choice([c for c in table.enums if c in props])
        value = self.rng.choice(table.enums[column])
        sid = d.step_id()
        step = ChainStep(id=sid, tool=tool.name, arguments={column: value})
        rows = self._run(step, {})
        numbers = [v for v in (rows[0].values() if rows else []) if isinstance(v, int) and not isinstance(v, bool)]
        if not numbers:
            raise _Skip
        d.steps.append(step)
        plural = entity_plural(table.name)
        self._ask(
            d,
            sid,
            "count",
            [
                f"How many {plural} have {label(column)} {format_value(value)}?",
                f"Could you count the {plural} whose {label(column)} is {format_value(value)}?",
            ],
            stated=[column],
        )
        d.values.append(ExpectedValue(step=sid, name="count", value=numbers[0]))
        d.purposes.append(f"know how many {plural} have {label(column)} {format_value(value)}")

    def _refine_search(self, d: _Draft, anchor: Anchor | None) -> None:
        def fits(t: Table) -> bool:
            tool = self.schema.tools.get("search", t.name)
            props = tool.input_schema.get("properties", {}) if tool else {}
            has_sort = "order_by" in props and "descending" in props
            return t.rows > 2 and has_sort and any(c in props for c in t.enums)

        table = self._pick_table(fits)
        tool = self.schema.tools.get("search", table.name)
        assert tool is not None
        props = tool.input_schema.get("properties", {})
        column = self.rng.choice([c for c in table.enums if c in props])
        value = self.rng.choice(table.enums[column])
        sortable = [c for c in props["order_by"].get("enum", []) if c in table.columns and c != column]
        dated = [c for c in sortable if table.columns[c].is_date or table.columns[c].numeric and c != table.pk]
        if not dated:
            raise _Skip
        sort = self.rng.choice(dated)
        sid = d.step_id()
        step = ChainStep(id=sid, tool=tool.name, arguments={column: value})
        rows = self._run(step, {})
        if len(rows) < 2:
            raise _Skip
        d.steps.append(step)
        key = table.key or table.pk or sort
        plural = entity_plural(table.name)
        self._ask(
            d,
            sid,
            "search",
            [
                f"Can you find the {plural} with {label(column)} {format_value(value)}?",
                f"Show me {plural} whose {label(column)} is {format_value(value)}.",
            ],
            stated=[column],
        )
        d.values.append(ExpectedValue(step=sid, name="count", value=len(rows)))
        extra = {"order_by": sort, "descending": True}
        refined = rows_of(self.executor.call(tool.name, {column: value, **extra}).structured)
        if not refined:
            raise _Skip
        step.report = [key, sort]
        d.refinement = Refinement(
            step=sid,
            arguments=extra,
            description=f"sorted by {label(sort)}, latest first",
            values=[ExpectedValue(step=sid, name=k, value=refined[0].get(k)) for k in dict.fromkeys([key, sort])],
        )
        self.results[sid] = refined
        d.purposes.append(f"find the {plural} with {label(column)} {format_value(value)}, sorted by {label(sort)}")
        d.anchors.append(Anchor(sid, table.name, refined[0]))

    def _ask(self, d: _Draft, sid: str, intent: str, phrasings: list[str], *, stated: list[str] | None = None) -> None:
        """Add the sub-request that asks for step ``sid``, in one of ``phrasings``."""
        d.subs.append(
            SubRequest(id=f"{sid}.r", steps=[sid], intent=intent, stated=stated or [], text=self.rng.choice(phrasings))
        )

    def _merge_lookup(self, d: _Draft) -> None:
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

    # ------------------------------------------------------------------ helpers
    def _find(
        self, d: _Draft, table: Table, anchor: Anchor | None, *, report: int = 1
    ) -> tuple[ValueRef, dict[str, Any]]:
        """A reference to a row of ``table``: the anchor's, or found with a new lookup step."""
        if anchor is not None and anchor.table == table.name:
            return ValueRef(step=anchor.step, field=table.pk or "", row=anchor.index), anchor.row
        rows = self.executor.db.query(f'SELECT * FROM "{table.name}" ORDER BY rowid')
        if not rows:
            raise _Skip
        cols = list(table.columns)
        target = dict(zip(cols, self.rng.choice(rows), strict=True))
        sid = d.step_id()
        search = self.schema.tools.get("search", table.name)
        get = self.schema.tools.get("get", table.name)
        key = table.key
        if key and search and key in search.input_schema.get("properties", {}):
            step = ChainStep(id=sid, tool=search.name, arguments={key: target[key]})
            found = self._run(step, {})
            if len(found) != 1 or (table.pk and found[0].get(table.pk) != target.get(table.pk)):
                raise _Skip
            fact = key
        elif get is not None and table.pk is not None:
            step = ChainStep(id=sid, tool=get.name, arguments={table.pk: target[table.pk]})
            found = self._run(step, {})
            fact = table.pk
        else:
            raise _Skip
        fields = self._report_fields(table, found[0], report)
        step.report = fields
        d.steps.append(step)
        d.facts[fact] = Fact(
            name=fact, value=target[fact], description=f"the {label(fact)} of your {entity(table.name)}"
        )
        self._ask(
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
        self._expect_values(d, sid, found[0], fields)
        return ValueRef(step=sid, field=table.pk or fact), found[0]

    def _run(self, step: ChainStep, resolved: dict[str, Any]) -> list[dict[str, Any]]:
        args = dict(step.arguments)
        for name, ref in step.refs.items():
            args[name] = resolved[name] if name in resolved else self.results[ref.step][ref.row][ref.field]
        try:
            outcome = self.executor.call(step.tool, args)
        except ToolError as exc:
            raise _Skip from exc
        rows = rows_of(outcome.structured)
        step.resolved = args
        self.results[step.id] = rows
        return rows

    def _pick_table(self, fits: Callable[[Table], bool]) -> Table:
        options = [t for t in self.schema.tables.values() if fits(t)]
        if not options:
            raise _Skip
        return self.rng.choice(options)

    def _anchor_table(self, anchor: Anchor | None, fits: Callable[[Table], bool]) -> Table | None:
        if anchor is None:
            return None
        table = self.schema.tables.get(anchor.table)
        return table if table is not None and fits(table) else None

    def _list_tool(self, child: str, column: str) -> ToolSpec | None:
        for tool in self.schema.tools.all("list_related", child):
            if column in tool.input_schema.get("required", []):
                return tool
        return None

    def _report_fields(self, table: Table, row: dict[str, Any], n: int) -> list[str]:
        fields = [f for f in table.informative() if row.get(f) is not None]
        self.rng.shuffle(fields)
        return fields[:n]

    def _expect_values(self, d: _Draft, step: str, row: dict[str, Any], fields: list[str]) -> None:
        d.values.extend(ExpectedValue(step=step, name=f, value=row.get(f)) for f in fields)

    def _updatable(self, table: Table, tool: ToolSpec) -> list[tuple[str, list[Any]]]:
        props = tool.input_schema.get("properties", {})
        out = []
        for col, values in table.enums.items():
            if col in props:
                allowed = props[col].get("enum") or values
                out.append((col, [v for v in allowed if v is not None]))
        return out

    def _new_row_values(self, table: Table, tool: ToolSpec, *, skip: set[str]) -> dict[str, Any]:
        props = tool.input_schema.get("properties", {})
        required = set(tool.input_schema.get("required", []))
        sample = self.executor.db.query(f'SELECT * FROM "{table.name}" ORDER BY rowid')
        if not sample:
            raise _Skip
        row = dict(zip(table.columns, self.rng.choice(sample), strict=True))
        args: dict[str, Any] = {}
        for name in props:
            if name in skip or name not in table.columns or (name not in required and name not in table.enums):
                continue
            col = table.columns[name]
            value = row.get(name)
            if col.pk or name in table.fks:
                if name in required:
                    raise _Skip  # another parent would be needed; keep tasks simple
                continue
            if name in table.enums:
                value = self.rng.choice(table.enums[name])
            elif name == table.key or _unique(self.executor, table, name):
                value = f"{value}-{self.rng.randrange(100, 999)}" if isinstance(value, str) else value
            if value is None:
                continue
            args[name] = value
        if not args:
            raise _Skip
        return args

    def _row_exists(self, step: str, table: str, values: dict[str, Any], description: str) -> SqlAssertion:
        """Whether a row with exactly these column values exists (1) or not (0)."""
        names = {c: f"v{i}" for i, c in enumerate(values)}
        where = " AND ".join(f"{_q(c)} IS :{names[c]}" for c in values)
        return SqlAssertion(
            description=f"{description} exists",
            sql=f'SELECT EXISTS (SELECT 1 FROM "{table}" WHERE {where})',
            params={names[c]: v for c, v in values.items()},
            expected=[[1]],
            step=step,
        )

    def _field_check(self, step: str, table: Table, column: str, pk: Any, value: Any) -> SqlAssertion:
        return SqlAssertion(
            description=f"{entity(table.name)} {pk} has {label(column)} {format_value(value)}",
            sql=f'SELECT "{column}" FROM "{table.name}" WHERE "{table.pk}" = :pk',
            params={"pk": pk},
            expected=[[value]],
            step=step,
        )

    # ------------------------------------------------------------------ finishing
    def _finish(self, d: _Draft) -> Task:
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
        goal = "You want to " + _sentence(d.purposes) + "." + (f" You know that {facts}." if facts else "")
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


def _unique(executor: ToolExecutor, table: Table, column: str) -> bool:
    distinct, total = executor.db.query(f'SELECT COUNT(DISTINCT "{column}"), COUNT(*) FROM "{table.name}"')[0]
    return bool(total > 1 and distinct == total)


def _q(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _words(fields: list[str]) -> str:
    return _sentence([label(f) for f in fields]) or "details"


def _sentence(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", then ".join(parts)


def _pairs(args: dict[str, Any], names: list[str]) -> str:
    return ", ".join(f"{label(k)} {format_value(args[k])}" for k in names if k in args)
