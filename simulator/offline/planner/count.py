"""Count the rows with a given value."""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas import ChainStep, ExpectedValue
from simulator.offline.language import entity_plural, format_value, label
from simulator.offline.planner._base import Anchor, Draft, Skip
from simulator.offline.schema_view import Table

if TYPE_CHECKING:
    from simulator.offline.planner.planner import Planner

__all__ = ["count"]


def count(p: Planner, d: Draft, anchor: Anchor | None) -> None:
    def fits(t: Table) -> bool:
        tool = p.schema.tools.get("count", t.name)
        props = tool.input_schema.get("properties", {}) if tool else {}
        return t.rows > 0 and any(c in props for c in t.enums)

    table = p.pick_table(fits)
    tool = p.schema.tools.get("count", table.name)
    assert tool is not None
    props = tool.input_schema.get("properties", {})
    column = p.rng.choice([c for c in table.enums if c in props])
    value = p.rng.choice(table.enums[column])
    sid = d.step_id()
    step = ChainStep(id=sid, tool=tool.name, arguments={column: value})
    rows = p.run(step, {})
    numbers = [v for v in (rows[0].values() if rows else []) if isinstance(v, int) and not isinstance(v, bool)]
    if not numbers:
        raise Skip
    d.steps.append(step)
    plural = entity_plural(table.name)
    p.ask(
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
