"""Look something up: find one of the user's rows and say some of its fields."""

from __future__ import annotations

from typing import TYPE_CHECKING

from simulator.offline.language import entity
from simulator.offline.planner._base import Anchor, Draft, words

if TYPE_CHECKING:
    from simulator.offline.planner.planner import Planner

__all__ = ["lookup"]


def lookup(p: Planner, d: Draft, anchor: Anchor | None) -> None:
    table = p.pick_table(lambda t: bool(t.informative()) and t.rows > 0)
    ref, row = p.find(d, table, None, report=2)
    fields = d.steps[-1].report
    d.purposes.append(f"find out the {words(fields)} of your {entity(table.name)}")
    d.anchors.append(Anchor(ref.step, table.name, row))
