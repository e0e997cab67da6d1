"""Search by a value, then re-sort the results as the user asks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas import ChainStep, ExpectedValue, Refinement
from simulator.offline.language import entity_plural, format_value, label
from simulator.offline.planner._base import Anchor, Draft, Skip, rows_of
from simulator.offline.schema_view import Table

if TYPE_CHECKING:
    from simulator.offline.planner.planner import Planner

__all__ = ["refine_search"]


def refine_search(p: Planner, d: Draft, anchor: Anchor | None) -> None:
    def fits(t: Table) -> bool:
        tool = p.schema.tools.get("search", t.name)
        props = tool.input_schema.get("properties", {}) if tool else {}
        has_sort = "order_by" in props and "descending" in props
        return t.rows > 2 and has_sort and any(c in props for c in t.enums)

    table = p.pick_table(fits)
    tool = p.schema.tools.get("search", table.name)
    assert tool is not None
    props = tool.input_schema.get("properties", {})
    column = p.rng.choice([c for c in table.enums if c in props])
    value = p.rng.choice(table.enums[column])
    sortable = [c for c in props["order_by"].get("enum", []) if c in table.columns and c != column]
    dated = [c for c in sortable if table.columns[c].is_date or table.columns[c].numeric and c != table.pk]
    if not dated:
        raise Skip
    sort = p.rng.choice(dated)
    sid = d.step_id()
    step = ChainStep(id=sid, tool=tool.name, arguments={column: value})
    rows = p.run(step, {})
    if len(rows) < 2:
        raise Skip
    d.steps.append(step)
    key = table.key or table.pk or sort
    plural = entity_plural(table.name)
    p.ask(
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
    refined = rows_of(p.executor.call(tool.name, {column: value, **extra}).structured)
    if not refined:
        raise Skip
    step.report = [key, sort]
    d.refinement = Refinement(
        step=sid,
        arguments=extra,
        description=f"sorted by {label(sort)}, latest first",
        values=[ExpectedValue(step=sid, name=k, value=refined[0].get(k)) for k in dict.fromkeys([key, sort])],
    )
    p.results[sid] = refined
    d.purposes.append(f"find the {plural} with {label(column)} {format_value(value)}, sorted by {label(sort)}")
    d.anchors.append(Anchor(sid, table.name, refined[0]))
