"""Follow a relation: list the rows that belong to one of the user's rows, and change the first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas import ChainStep, ExpectedValue, ValueRef
from simulator.offline.language import entity, entity_plural
from simulator.offline.planner._base import Anchor, Draft, Skip
from simulator.offline.planner.update import update
from simulator.offline.schema_view import Table

if TYPE_CHECKING:
    from simulator.offline.planner.planner import Planner

__all__ = ["related", "related_update"]


def related(p: Planner, d: Draft, anchor: Anchor | None) -> None:
    def fits(t: Table) -> bool:
        return t.rows > 0 and any(p.list_tool(c, col) for c, col in p.schema.children(t.name))

    parent = p.anchor_table(anchor, fits) or p.pick_table(fits)
    ref, prow = p.find(d, parent, anchor)
    options = [(c, col, tool) for c, col in p.schema.children(parent.name) if (tool := p.list_tool(c, col))]
    child_name, fk, tool = p.rng.choice(options)
    child = p.schema.tables[child_name]
    pk_field = parent.fks.get(fk, (None, None))[1] or parent.pk or ""
    sid = d.step_id()
    step = ChainStep(id=sid, tool=tool.name, refs={fk: ValueRef(step=ref.step, field=pk_field, row=ref.row)})
    rows = p.run(step, {fk: prow.get(pk_field)})
    if not rows:
        raise Skip
    fields = p.report_fields(child, rows[0], 1)
    step.report = fields
    d.steps.append(step)
    p.ask(
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
    p.expect_values(d, sid, rows[0], fields)
    d.purposes.append(f"see the {entity_plural(child_name)} of that {entity(parent.name)}")
    d.anchors.append(Anchor(sid, child_name, rows[0]))


def related_update(p: Planner, d: Draft, anchor: Anchor | None) -> None:
    """Follow a relation, then change the first related row: a chain of three calls."""
    related(p, d, anchor)
    first = d.anchors[-1]
    table = p.schema.tables[first.table]
    tool = p.schema.tools.get("update", table.name)
    if tool is None or table.pk is None or not p.updatable(table, tool):
        raise Skip
    update(p, d, first, subject="the first one's")
