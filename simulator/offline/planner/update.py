"""Change a field of one of the user's rows (sometimes after a change of mind)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas import ChainStep, ChangeOfMind, ExpectedValue
from simulator.offline.language import entity, format_value, label
from simulator.offline.planner._base import Anchor, Draft, Skip
from simulator.offline.schema_view import Table

if TYPE_CHECKING:
    from simulator.offline.planner.planner import Planner

__all__ = ["update"]


def update(p: Planner, d: Draft, anchor: Anchor | None, *, subject: str = "its") -> None:
    def fits(t: Table) -> bool:
        tool = p.schema.tools.get("update", t.name)
        return tool is not None and t.rows > 0 and t.pk is not None and bool(p.updatable(t, tool))

    table = p.anchor_table(anchor, fits) or p.pick_table(fits)
    tool = p.schema.tools.get("update", table.name)
    assert tool is not None and table.pk is not None
    ref, row = p.find(d, table, anchor)
    column, values = p.rng.choice(p.updatable(table, tool))
    choices = [v for v in values if v != row.get(column)]
    if not choices:
        raise Skip
    final = p.rng.choice(choices)
    sid = d.step_id()
    step = ChainStep(id=sid, tool=tool.name, arguments={column: final}, refs={table.pk: ref}, report=[column])
    first = None
    others = [v for v in choices if v != final]
    if others and p.rng.random() < 0.35:
        first = p.rng.choice(others)
        p.run(
            ChainStep(id=sid, tool=tool.name, arguments={column: first}, refs=step.refs),
            {table.pk: row[table.pk]},
        )
        d.change_of_mind = ChangeOfMind(step=sid, argument=column, first=first)
    p.run(step, {table.pk: row[table.pk]})
    d.steps.append(step)
    said = first if first is not None else final
    p.ask(
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
    d.checks.append(p.field_check(sid, table, column, row[table.pk], final))
    d.purposes.append(f"change the {label(column)} of that {entity(table.name)} to {format_value(final)}")
