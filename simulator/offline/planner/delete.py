"""Remove one of the user's rows (one that nothing else refers to)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas import ChainStep, SqlAssertion
from simulator.offline.language import entity
from simulator.offline.planner._base import Anchor, Draft, Skip
from simulator.offline.schema_view import Table

if TYPE_CHECKING:
    from simulator.offline.planner.planner import Planner

__all__ = ["delete"]


def delete(p: Planner, d: Draft, anchor: Anchor | None) -> None:
    def fits(t: Table) -> bool:
        return p.schema.tools.get("delete", t.name) is not None and t.pk is not None and t.rows > 3

    table = p.anchor_table(anchor, fits) or p.pick_table(fits)
    tool = p.schema.tools.get("delete", table.name)
    assert tool is not None and table.pk is not None
    ref, row = p.find(d, table, anchor)
    for child, col in p.schema.children(table.name):
        if p.executor.db.query(f'SELECT 1 FROM "{child}" WHERE "{col}" = :pk LIMIT 1', {"pk": row[table.pk]}):
            raise Skip
    sid = d.step_id()
    step = ChainStep(id=sid, tool=tool.name, refs={table.pk: ref})
    p.run(step, {table.pk: row[table.pk]})
    d.steps.append(step)
    p.ask(
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
