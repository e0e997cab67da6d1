"""Add a row under one of the user's rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas import ChainStep, ExpectedValue, Fact, SqlAssertion, ValueRef
from simulator.offline.language import entity, label
from simulator.offline.planner._base import Anchor, Draft, Skip, pairs, q
from simulator.offline.schema_view import Table

if TYPE_CHECKING:
    from simulator.offline.planner.planner import Planner

__all__ = ["create"]


def create(p: Planner, d: Draft, anchor: Anchor | None) -> None:
    def fits(t: Table) -> bool:
        return any(
            p.schema.tools.get("create", c) is not None and p.schema.tables[c].rows > 0
            for c, _ in p.schema.children(t.name)
        )

    parent = p.anchor_table(anchor, fits) or p.pick_table(fits)
    options = [(c, col) for c, col in p.schema.children(parent.name) if p.schema.tools.get("create", c)]
    child_name, fk = p.rng.choice(options)
    child = p.schema.tables[child_name]
    tool = p.schema.tools.get("create", child_name)
    assert tool is not None
    ref, prow = p.find(d, parent, anchor)
    pk_field = child.fks[fk][1] or parent.pk or ""
    args = p.new_row_values(child, tool, skip={fk})
    sid = d.step_id()
    step = ChainStep(id=sid, tool=tool.name, arguments=args, refs={fk: ValueRef(step=ref.step, field=pk_field)})
    probe = p.row_exists(sid, child_name, {fk: prow.get(pk_field), **args}, "")
    before = p.executor.db.query(probe.sql, probe.params)
    rows = p.run(step, {fk: prow.get(pk_field)})
    if not rows:
        raise Skip
    shown = [k for k in args if k in child.informative()] or list(args)
    step.report = shown[:2]
    d.steps.append(step)
    stated = shown[:1]
    p.ask(
        d,
        sid,
        "create",
        [
            f"I'd like to add a new {entity(child_name)} to it, with {pairs(args, stated)}.",
            f"Please create a {entity(child_name)} for it — {pairs(args, stated)}.",
            f"Can you set up a new {entity(child_name)} there? {pairs(args, stated).capitalize()}.",
        ],
        stated=stated,
    )
    for name in args:
        if name not in stated:
            d.facts[name] = Fact(name=name, value=args[name], description=f"the {label(name)} you want")
    if child.pk is None or child.pk not in rows[0]:
        raise Skip
    columns = [fk, *args]
    values = {c: rows[0].get(c) for c in columns}
    check = p.row_exists(sid, child_name, values, f"a {entity(child_name)} with {pairs(args, list(args))}")
    if before[0][0]:
        raise Skip  # an identical row was already there: the task would check nothing
    d.checks.append(check)
    new_key = rows[0][child.pk]

    def final() -> SqlAssertion:
        # The row as the whole scenario leaves it (a later task may change it), found by content.
        now = p.executor.db.query(
            f'SELECT {", ".join(q(c) for c in columns)} FROM "{child_name}" WHERE "{child.pk}" = :pk',
            {"pk": new_key},
        )
        if not now:  # deleted later: the final state is that it is gone
            return SqlAssertion(
                description=check.description + " (then removed)",
                sql=check.sql,
                params=check.params,
                expected=[[0]],
            )
        return p.row_exists(sid, child_name, dict(zip(columns, now[0], strict=True)), check.description)

    d.finals[len(d.checks) - 1] = final
    for name in step.report:
        d.values.append(ExpectedValue(step=sid, name=name, value=args[name]))
    d.purposes.append(f"add a {entity(child_name)} ({pairs(args, list(args))}) to that {entity(parent.name)}")
    d.anchors.append(Anchor(sid, child_name, rows[0]))
