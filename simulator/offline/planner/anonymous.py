"""Tasks for environments whose rules say nothing about who the user is (no user table, or no way
for a user to identify themselves with the tools): rows are found by their names, nothing is owned.

The same grounding holds: every value the agent needs is in the request's words; writes
are still restated and confirmed by the agent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from schemas import ChainStep, ExpectedValue, SqlAssertion
from simulator.offline.language import label
from simulator.offline.planner._base import Anchor, Draft, Skip
from simulator.offline.planner._find import find_public, name_column
from simulator.offline.planner._words import ask_fields, frame
from simulator.offline.schema_view import Table
from toolservers.sql import quote_ident

if TYPE_CHECKING:
    from simulator.offline.planner.planner import Kind, Planner

__all__ = ["ANONYMOUS_KINDS"]


def _findable(p: Planner, t: Table) -> bool:
    search = p.tool("search", t.name)
    column = "last_name" if "last_name" in t.columns else name_column(t)
    return t.pk is not None and t.rows > 0 and search is not None and column in p.params(search)


def lookup(p: Planner, d: Draft, anchor: Anchor | None) -> None:
    table = p.pick_table(lambda t: _findable(p, t) and bool(t.informative()))
    found = find_public(p, d, table)
    fields = [f for f in table.informative() if found.row.get(f) is not None and f not in found.stated]
    p.rng.shuffle(fields)
    fields = fields[:2]
    if not fields:
        raise Skip
    d.steps[-1].report = fields
    p.expect(d, found.steps[-1], found.row, fields)
    p.ask(d, found.steps, "lookup", ask_fields(p.say, found.words, fields), stated=found.stated)
    d.purposes.append(f"find out the {', '.join(label(f) for f in fields)} of {found.words}")
    d.anchors.append(Anchor(found.steps[-1], table.name, found.row))


def update(p: Planner, d: Draft, anchor: Anchor | None) -> None:
    def fits(t: Table) -> bool:
        tool = p.tool("update", t.name)
        return _findable(p, t) and tool is not None and any(c in p.params(tool) for c in t.enums)

    table = p.pick_table(fits)
    tool = p.tool("update", table.name)
    assert tool is not None and table.pk is not None
    found = find_public(p, d, table)
    column = p.rng.choice([c for c in table.enums if c in p.params(tool)])
    values = [v for v in table.enums[column] if v != found.row.get(column)]
    if not values:
        raise Skip
    new: Any = p.rng.choice(values)
    sid = d.step_id()
    step = ChainStep(id=sid, tool=tool.name, arguments={column: new}, refs={table.pk: found.ref}, report=[column])
    if not p.run(step, {}):
        raise Skip
    d.steps.append(step)
    v = p.say.value(new, column)
    text = frame(
        p.say,
        (f"Set the {label(column)} of {found.words} to {v}.",),
        (f"Could you change the {label(column)} of {found.words} to {v}?", f"Please set {found.words} to {v}."),
        (f"I'd like the {label(column)} of {found.words} changed to {v}, if that's possible.",),
    )
    p.ask(d, [*found.steps, sid], "update", text, stated=[*found.stated, column])
    d.values.append(ExpectedValue(step=sid, name=column, value=new))
    d.checks.append(p.field_check(sid, table, column, found.row[table.pk], new))
    d.purposes.append(f"change the {label(column)} of {found.words} to {v}")


def create(p: Planner, d: Draft, anchor: Anchor | None) -> None:
    def fits(t: Table) -> bool:
        return p.tool("create", t.name) is not None and t.rows > 0 and not t.fks

    table = p.pick_table(fits)
    tool = p.tool("create", table.name)
    assert tool is not None
    required = set(tool.input_schema.get("required", []))
    rows = p.query_rows(f"SELECT * FROM {quote_ident(table.name)} ORDER BY rowid")
    sample = p.rng.choice(rows)
    args: dict[str, Any] = {}
    for name in p.params(tool):
        if name not in required or name not in table.columns:
            continue
        value = p.rng.choice(table.enums[name]) if name in table.enums else sample.get(name)
        if isinstance(value, str) and name not in table.enums:
            taken = {r.get(name) for r in rows}
            if (
                value in taken
                and p.executor.db.query(
                    f"SELECT COUNT(DISTINCT {quote_ident(name)}) = COUNT(*) FROM {quote_ident(table.name)}"
                )[0][0]
            ):
                value = (
                    value.replace("@", f"{p.rng.randrange(10, 99)}@")
                    if "@" in value
                    else f"{value} {p.rng.randrange(2, 9)}"
                )
        if value is None:
            raise Skip
        args[name] = value
    if not args:
        raise Skip
    sid = d.step_id()
    step = ChainStep(id=sid, tool=tool.name, arguments=args)
    made = p.run(step, {})
    if not made:
        raise Skip
    d.steps.append(step)
    pairs = ", ".join(f"the {label(k)} {p.say.value(v, k)}" for k, v in args.items())
    noun = table.name.rstrip("s").replace("_", " ")
    text = frame(
        p.say,
        (f"Add a {noun}: {pairs}.",),
        (f"Please add a new {noun} with {pairs}.", f"Could you create a {noun}? It's {pairs}."),
        (f"I'd like to add a new {noun} to the system, with {pairs}, if you could.",),
    )
    p.ask(d, [sid], "create", text, stated=list(args))
    check = p.row_exists(sid, table.name, args, f"a new {noun}")
    d.checks.append(check)
    d.finals[len(d.checks) - 1] = lambda: SqlAssertion(
        description=check.description, sql=check.sql, params=check.params, expected=[[1]]
    )
    d.purposes.append(f"add a {noun} with {pairs}")


ANONYMOUS_KINDS: list[tuple[str, Kind, float]] = [
    ("lookup", lookup, 1.0),
    ("update", update, 1.0),
    ("create", create, 0.6),
]
