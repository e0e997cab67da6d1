"""The kinds of task the offline planner samples, for any schema its rules describe.

- ``lookup``: a field or two of one of the user's rows, named the way they know it;
- ``related``: follow a relation and a second one (the products of an order, the doctors
  of one's appointments): one call per related row;
- ``count``: how many of the user's rows have a value (and what they add up to);
- ``browse``: search a public catalogue, then re-sort it;
- ``update``: change a field of the user's row as the rules allow (a cancellation goes
  through the pack's own tool when it has one), sometimes after a change of mind;
- ``create``: add a row (a booking, an order, an address) with every value said, sometimes
  first with a value the tool refuses (a detour through a real error);
- ``delete``: remove a row the rules let the user remove;
- ``forbidden``: a request the rules forbid (another person's row, a status that cannot
  move, a field that is not the user's to change, a catalogue row, a value no rule
  allows): the agent must refuse; the task has no write and checks that nothing changed.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from schemas import ChainStep, ChangeOfMind, Detour, ExpectedValue, Refinement, SqlAssertion, ToolSpec, ValueRef
from schemas.policy import ToolRule
from simulator.offline._inflect import plural
from simulator.offline.language import cap, entity, field_name, format_value, is_flag, label, total_of
from simulator.offline.planner._base import Anchor, Draft, Skip, rows_of
from simulator.offline.planner._find import Found, find_own, name_column
from simulator.offline.planner._words import ask_fields, change_field, field_list, frame
from simulator.offline.schema_view import Table
from toolservers.sql import quote_ident

if TYPE_CHECKING:
    from simulator.offline.planner.planner import Kind, Planner

__all__ = ["KINDS"]


def _owned(p: Planner, t: Table) -> bool:
    return p.policy is not None and len(p.policy.rules(t.name).owner) == 1 and t.pk is not None


def _informative(t: Table, row: dict[str, Any], skip: list[str]) -> list[str]:
    return [
        f
        for f in t.informative()
        if row.get(f) is not None
        and f not in skip
        and not f.startswith(("is_", "has_"))
        and f not in {"active"}
        and not (isinstance(row[f], str) and (row[f].rstrip()[-1:] in {".", "!", "?"} or len(row[f]) > 60))
    ]


# --------------------------------------------------------------------------- reads


def lookup(p: Planner, d: Draft, anchor: Anchor | None) -> None:
    table = p.schema.tables.get(anchor.table) if anchor else None
    if table is None or not _owned(p, table):
        table = p.pick_table(lambda t: _owned(p, t) and bool(t.informative()))
    found = find_own(p, d, table, anchor)
    fields = _informative(table, found.row, found.stated)
    p.rng.shuffle(fields)
    fields = fields[: p.rng.choice([1, 2, 2])]
    if not fields:
        raise Skip
    sid = _reading_step(p, d, table, found)
    d.steps[-1].report = fields
    p.expect(d, sid, found.row, fields)
    p.ask(
        d,
        [*found.steps, sid] if sid not in found.steps else found.steps,
        "lookup",
        ask_fields(p.say, found.words, fields),
        stated=found.stated,
    )
    d.purposes.append(f"find out {field_list(fields)} of {found.words}")
    d.anchors.append(Anchor(sid, table.name, found.row))


def lookup_via(p: Planner, d: Draft, anchor: Anchor | None) -> None:
    """A field of the public row one of the user's rows points at (the doctor of an appointment)."""
    assert_rules(p)
    assert p.policy is not None
    options: list[tuple[Table, str, Table]] = []
    for t in p.schema.tables.values():
        if not _owned(p, t):
            continue
        for col, (target_name, _) in t.fks.items():
            tt = p.schema.tables.get(target_name)
            if tt is None or not p.policy.rules(target_name).public or not p.tool("get", target_name) or tt.pk is None:
                continue
            fields = [f for f in tt.informative() if f != name_column(tt)]
            if name_column(tt) or fields:
                options.append((t, col, tt))
    if not options:
        raise Skip
    table, col, target = p.rng.choice(options)
    found = find_own(p, d, table, anchor if anchor and anchor.table == table.name else None)
    sid = _reading_step(p, d, table, found)
    get = p.tool("get", target.name)
    assert get is not None and target.pk is not None
    gid = d.step_id()
    step = ChainStep(id=gid, tool=get.name, refs={target.pk: ValueRef(step=sid, field=col, row=found.ref.row)})
    rows = p.run(step, {})
    if not rows:
        raise Skip
    d.steps.append(step)
    row = rows[0]
    hops = [(c2, p.schema.tables[t2]) for c2, (t2, _) in target.fks.items() if t2 in p.schema.tables]
    hops = [(c2, t2) for c2, t2 in hops if p.policy.rules(t2.name).public and p.tool("get", t2.name) and t2.pk]
    if hops and p.rng.random() < 0.6:
        c2, t2 = p.rng.choice(hops)
        get2 = p.tool("get", t2.name)
        assert get2 is not None and t2.pk is not None
        step.report = []
        gid = d.step_id()
        step = ChainStep(id=gid, tool=get2.name, refs={t2.pk: ValueRef(step=step.id, field=c2)})
        more = p.run(step, {})
        if not more:
            raise Skip
        d.steps.append(step)
        target, row = t2, more[0]
    name = name_column(target)
    fields = _informative(target, row, [])
    p.rng.shuffle(fields)
    fields = [f for f in fields if f != name][: p.rng.choice([1, 1, 2])]
    report = ([name] if name else []) + fields
    if not report:
        raise Skip
    step.report = report
    p.expect(d, gid, row, report)
    noun = entity(target.name)
    asked = field_list(fields) if fields else ""
    text = frame(
        p.say,
        (
            f"Which {noun} is on {found.words}?" + (f" {cap(asked)}?" if asked else ""),
            f"{cap(noun)} for {found.words}?" + (f" And {asked}?" if asked else ""),
        ),
        (
            f"Which {noun} is {found.words} for?" + (f" I'd also like {asked} of it." if asked else ""),
            f"Could you tell me the {noun} for {found.words}" + (f", and {asked}?" if asked else "?"),
            f"What's the {noun} on {found.words}?" + (f" And what is {asked}?" if asked else ""),
            f"Do you know which {noun} {found.words} is for?" + (f" Also {asked}, if you can." if asked else ""),
            f"Which {noun} goes with {found.words}?" + (f" I'm also after {asked}." if asked else ""),
            f"Remind me which {noun} {found.words} is for" + (f", and {asked}?" if asked else "?"),
            f"Can you find the {noun} linked to {found.words}?" + (f" Plus {asked}." if asked else ""),
            f"I need the {noun} for {found.words}" + (f", with {asked}." if asked else "."),
            f"Would you look up which {noun} {found.words} belongs to?" + (f" And {asked}, please." if asked else ""),
            f"For {found.words}, which {noun} is it?" + (f" I'd like {asked} too." if asked else ""),
            f"Could you check the {noun} on {found.words}" + (f" and give me {asked}?" if asked else "?"),
            f"What {noun} is {found.words} with?" + (f" And {asked}?" if asked else ""),
            f"Can you see which {noun} {found.words} is linked to?" + (f" I'd like {asked} as well." if asked else ""),
            f"I'd like to know the {noun} behind {found.words}" + (f", plus {asked}." if asked else "."),
            f"Which {noun} does {found.words} go with?" + (f" And could you tell me {asked}?" if asked else ""),
            f"Could you find out the {noun} for {found.words}" + (f" and {asked}?" if asked else "?"),
            f"Tell me the {noun} on {found.words}, please." + (f" {cap(asked)} too." if asked else ""),
            f"Would you check {found.words} for its {noun}?" + (f" Also {asked}." if asked else ""),
            f"Which {noun} is attached to {found.words}?" + (f" I also need {asked}." if asked else ""),
        ),
        (
            f"I can't remember which {noun} {found.words} was with — could you look that up"
            + (f", and tell me {asked}?" if asked else "?"),
        ),
    )
    steps = [*found.steps, sid] if sid not in found.steps else list(found.steps)
    steps += [x.id for x in d.steps if x.id not in steps and x.id not in d.loose and x.id.startswith(d.task_id + ".")]
    p.ask(d, steps, "lookup", text, stated=found.stated)
    d.purposes.append(f"know the {noun} of {found.words}" + (f" and {asked}" if asked else ""))
    d.anchors.append(Anchor(sid, table.name, found.row))


def _reading_step(p: Planner, d: Draft, table: Table, found: Found) -> str:
    """The step whose result shows the row: the lookup itself, or a new get for an anchored row."""
    if found.steps:
        return found.steps[-1]
    get = p.tool("get", table.name)
    if get is None or table.pk is None:
        raise Skip
    sid = d.step_id()
    step = ChainStep(id=sid, tool=get.name, refs={table.pk: found.ref})
    rows = p.run(step, {})
    if not rows:
        raise Skip
    d.steps.append(step)
    found.row = rows[0]
    return sid


def related(p: Planner, d: Draft, anchor: Anchor | None) -> None:
    """The user's row -> its child rows -> the public row each child points at (its name)."""
    assert_rules(p)
    options: list[tuple[Table, str, str, ToolSpec, str, Table, tuple[str, Table] | None]] = []
    for t in p.schema.tables.values():
        is_user = p.policy is not None and t.name == p.policy.user_table
        if not (is_user or _owned(p, t)):
            continue
        for child, fk in p.schema.children(t.name):
            lists = [x for x in p.schema.tools.all("list_related", child) if fk in x.input_schema.get("required", [])]
            if not lists:
                continue
            ctable = p.schema.tables[child]
            for col, (target_name, _) in ctable.fks.items():
                tt = p.schema.tables.get(target_name)
                if (
                    tt is None
                    or not p.policy
                    or not p.policy.rules(target_name).public
                    or col == fk
                    or not p.tool("get", target_name)
                ):
                    continue
                if name_column(tt):
                    options.append((t, child, fk, lists[0], col, tt, None))
                for col2, (target2, _) in tt.fks.items():
                    t2 = p.schema.tables.get(target2)
                    if t2 is not None and p.policy.rules(target2).public and name_column(t2) and p.tool("get", target2):
                        options.append((t, child, fk, lists[0], col, tt, (col2, t2)))
    if not options:
        raise Skip
    deep = [o for o in options if o[6] is not None]
    parent, child, fk, list_tool, link, hop, second = p.rng.choice(deep if deep and p.rng.random() < 0.7 else options)
    if p.policy is not None and parent.name == p.policy.user_table:
        me = p.identify(d)
        found = Found(me, p.me_row or {}, "my account", [], [])
        words = None
    else:
        found = find_own(p, d, parent, anchor)
        words = found.words
    sid = d.step_id()
    step = ChainStep(id=sid, tool=list_tool.name, refs={fk: found.ref})
    rows = p.run(step, {})
    if not rows or len(rows) > 8:
        raise Skip
    d.steps.append(step)
    target = second[1] if second else hop
    tname = name_column(target)
    assert tname is not None and target.pk is not None and hop.pk is not None
    get = p.tool("get", hop.name)
    assert get is not None
    steps = [*found.steps, sid]
    for i in range(len(rows)):
        gid = d.step_id()
        g = ChainStep(id=gid, tool=get.name, refs={hop.pk: ValueRef(step=sid, field=link, row=i)})
        got = p.run(g, {})
        if not got:
            raise Skip
        d.steps.append(g)
        steps.append(gid)
        if second is None:
            g.report = [tname]
            p.expect(d, gid, got[0], [tname])
            continue
        get2 = p.tool("get", target.name)
        assert get2 is not None
        hid = d.step_id()
        h = ChainStep(id=hid, tool=get2.name, refs={target.pk: ValueRef(step=gid, field=second[0])}, report=[tname])
        got2 = p.run(h, {})
        if not got2:
            raise Skip
        d.steps.append(h)
        steps.append(hid)
        p.expect(d, hid, got2[0], [tname])
    d.values.append(ExpectedValue(step=sid, name="count", value=len(rows)))
    things = plural(entity(target.name))
    kids = plural(entity(child))
    if words is None:
        mine = p.words.choice(
            [
                f"my {kids}",
                f"my {kids}",
                f"my {kids}",
                f"the {kids} on my account",
                f"the {kids} I have",
                f"the {kids} in my name",
                f"the {kids} I've got",
                f"the {kids} linked to my account",
                f"the {kids} you have for me",
            ]
        )
        text = frame(
            p.say,
            (
                f"Which {things} are on {mine}?",
                f"{cap(things)} for {mine}?",
                f"My {kids}: which {things}?",
                f"{cap(things)} on {mine}, please.",
                f"List the {things} of {mine}.",
                f"{cap(things)} behind {mine}?",
                f"Which {things} — {mine}?",
            ),
            (
                f"Which {things} are on {mine} — just the {label(tname)}, please?",
                f"Could you list the {label(tname)} of each {entity(target.name)} on {mine}?",
                f"Can you tell me which {things} {mine} are for?",
                f"I'd like to see {mine} — which {things} are they?",
                f"What {things} are {mine} for?",
                f"Could you run through {mine} and name the {things}?",
                f"Which {things} do {mine} cover? The {label(tname)} is enough.",
                f"For {mine}, which {things} are involved?",
                f"Which {things} go with {mine}?",
                f"Could you check {mine} and tell me the {things}?",
                f"I'm trying to remember which {things} {mine} are for — can you look?",
                f"What are the {things} behind {mine}?",
                f"Would you look up {mine} and say which {things} they are?",
                f"Can you pull up {mine}? I need to know the {things}.",
                f"Tell me which {things} I have {kids} for, please.",
                f"My {kids} — which {things} do they relate to?",
                f"Would you list the {things} for each of {mine}?",
                f"Do you know which {things} are attached to {mine}?",
                f"Could you tell me what {things} go with {mine}?",
                f"I'd like the {things} on {mine}, please.",
                f"Can you go through {mine} and give me the {things}?",
                f"What {things} are on {mine}? Just the {label(tname)} of each.",
                f"Would you check which {things} {mine} are for?",
                f"Which {things} are linked to {mine}?",
                f"I need a list of the {things} on {mine}.",
                f"Can you look at {mine} and name the {things} for me?",
                f"For each of {mine}, which {entity(target.name)} is it?",
                f"I'd like to know which {things} {mine} involve.",
            ),
            (
                f"I've lost track a bit — could you go through {mine} and tell me which {things} they're for?",
                f"Would you mind listing {mine}? I mostly need the {label(tname)} of each {entity(target.name)}.",
                f"I'm getting my paperwork in order and I need to know which {things} {mine} are for.",
                f"Could you help me with {mine}? I'd like to know which {things} they relate to.",
            ),
        )
    else:
        text = frame(
            p.say,
            (f"Which {things} are in {words}?", f"{cap(things)} in {words}?"),
            (
                f"Which {things} are in {words} (the {label(tname)} of each is enough)?",
                f"Could you tell me the {label(tname)} of every {entity(target.name)} in {words}?",
                f"What {things} does {words} include?",
                f"Can you list the {things} on {words} by {label(tname)}?",
                f"Could you run through the {things} in {words}?",
                f"What's in {words}? The {things}, I mean.",
                f"Can you see which {things} are listed on {words}?",
                f"Would you look up {words} and read me the {things}?",
                f"Any idea which {things} are in {words}?",
                f"I need the {things} from {words} — can you pull them up?",
                f"Remind me which {things} are on {words}?",
                f"Which {things} does {words} have on it?",
            ),
            (
                f"I can't remember exactly what was in {words} — could you list the {things} for me?",
                f"Would you be able to check {words} and tell me the {label(tname)} of each {entity(target.name)}?",
            ),
        )
    p.ask(d, steps, "list_related", text, stated=found.stated)
    d.purposes.append(f"know the {things} of {words or 'your ' + kids}")
    d.anchors.append(Anchor(sid, child, rows[0]))


def count(p: Planner, d: Draft, anchor: Anchor | None) -> None:
    assert_rules(p)
    assert p.policy is not None

    def fits(t: Table) -> bool:
        tool = p.tool("count", t.name)
        if tool is None or not _owned(p, t):
            return False
        props = p.params(tool)
        return p.policy is not None and p.policy.rules(t.name).owner[0] in props and any(c in props for c in t.enums)

    table = p.pick_table(fits)
    tool = p.tool("count", table.name)
    assert tool is not None
    props = p.params(tool)
    fk = p.policy.rules(table.name).owner[0]
    column = p.rng.choice([c for c in table.enums if c in props])
    value = p.rng.choice(table.enums[column])
    me = p.identify(d)
    sid = d.step_id()
    step = ChainStep(id=sid, tool=tool.name, arguments={column: value}, refs={fk: me})
    rows = p.run(step, {})
    if not rows or not isinstance(rows[0].get("count"), int):
        raise Skip
    d.steps.append(step)
    things = plural(entity(table.name))
    v = p.say.value(value, column)
    status = column in {"status", "state"}
    what = f"are {v}" if status else f"have the {label(column)} {v}"
    d.values.append(ExpectedValue(step=sid, name="count", value=rows[0]["count"]))
    report = ["count"]
    totals = [k for k in rows[0] if k.startswith("total_") and rows[0][k] is not None and rows[0]["count"]]
    extra = ""
    if totals and p.rng.random() < 0.6:
        total = totals[0]
        report.append(total)
        d.values.append(ExpectedValue(step=sid, name=total, value=rows[0][total]))
        noun, unit = total_of(total)
        if unit and noun:
            extra = p.words.choice(
                [f" And what's their total {noun}, in {unit}?", f" And how many {unit} do they add up to?"]
            )
        elif unit:
            extra = f" And how many {unit} is that altogether?"
        else:
            extra = p.words.choice([f" And what is their total {noun}?", f" And what does their {noun} add up to?"])
            extra = extra.replace("total total", "total").replace("their total add up", "it all add up")
    step.report = report
    steps = [sid]
    search = p.tool("search", table.name)
    links = [
        (c, p.schema.tables[t]) for c, (t, _) in table.fks.items() if t in p.schema.tables and p.policy.rules(t).public
    ]
    links = [(c, t) for c, t in links if name_column(t) and p.tool("get", t.name) and t.pk]
    if search and links and 0 < rows[0]["count"] <= 4 and fk in p.params(search) and column in p.params(search):
        lid = d.step_id()
        listing = ChainStep(id=lid, tool=search.name, arguments={column: value}, refs={fk: me})
        found = p.run(listing, {})
        if len(found) == rows[0]["count"]:
            d.steps.append(listing)
            steps.append(lid)
            link, target = p.rng.choice(links)
            get = p.tool("get", target.name)
            tname = name_column(target)
            assert get is not None and tname is not None and target.pk is not None
            for i in range(len(found)):
                gid = d.step_id()
                g = ChainStep(
                    id=gid, tool=get.name, refs={target.pk: ValueRef(step=lid, field=link, row=i)}, report=[tname]
                )
                got = p.run(g, {})
                if not got:
                    raise Skip
                d.steps.append(g)
                steps.append(gid)
                p.expect(d, gid, got[0], [tname])
            extra += f" Which {plural(entity(target.name))} are they for?"
    text = frame(
        p.say,
        (f"How many of my {things} {what}?", f"Number of my {things} that {what}?"),
        (
            f"How many of my {things} {what}?",
            f"Could you count how many of my {things} {what}?",
            f"Can you tell me how many {things} I have that {what}?",
            f"I'd like to know how many of my {things} {what}.",
            f"How many {things} of mine {what}?",
            f"Do you know how many of my {things} {what}?",
            f"Could you check how many of my {things} {what}?",
            f"What's the number of my {things} that {what}?",
            f"How many {things} do I have that {what}?",
            f"Can you count my {things} that {what}?",
            f"I'd like a count of my {things} that {what}.",
            f"Would you tell me how many of my {things} {what}?",
            f"Could you see how many {things} of mine {what}?",
            f"How many of the {things} on my account {what}?",
        ),
        (
            f"Out of curiosity, how many of my {things} {what} at the moment?",
            f"I'm trying to get an overview — could you tell me how many of my {things} {what}?",
        ),
    )
    p.ask(d, steps, "count", text + extra, stated=[column])
    d.purposes.append(f"know how many of your {things} {what}")


def browse(p: Planner, d: Draft, anchor: Anchor | None) -> None:
    """Search a public table by a value, then see it re-sorted."""
    assert_rules(p)

    def fits(t: Table) -> bool:
        tool = p.tool("search", t.name)
        props = p.params(tool) if tool else {}
        public = p.policy is not None and p.policy.rules(t.name).public
        return (
            public and t.rows > 2 and "order_by" in props and any(c in props for c in t.enums) and bool(name_column(t))
        )

    table = p.pick_table(fits)
    tool = p.tool("search", table.name)
    assert tool is not None
    props = p.params(tool)
    column = p.rng.choice([c for c in table.enums if c in props])
    value = p.rng.choice(table.enums[column])
    sortable = [c for c in props["order_by"].get("enum", []) if c in table.columns and c != column]
    keys = [
        c
        for c in sortable
        if (table.columns[c].is_date or table.columns[c].numeric)
        and c != table.pk
        and c not in table.fks
        and not c.startswith(("is_", "has_"))
        and c not in {"active", "accepting_new_patients"}
    ]
    if not keys:
        raise Skip
    sort = p.rng.choice(keys)
    sid = d.step_id()
    step = ChainStep(id=sid, tool=tool.name, arguments={column: value})
    rows = p.run(step, {})
    if len(rows) < 2 or len(rows) > 12:
        raise Skip
    d.steps.append(step)
    name = name_column(table)
    assert name is not None
    step.report = [name]
    d.values.append(ExpectedValue(step=sid, name="count", value=len(rows)))
    d.values.append(ExpectedValue(step=sid, name=name, value=rows[0].get(name)))
    things = plural(entity(table.name))
    v = p.say.value(value, column)
    text = frame(
        p.say,
        (f"{cap(things)} with {label(column)} {v}?", f"List {things}, {label(column)} {v}."),
        (
            f"Which {things} have the {label(column)} {v}?",
            f"Can you show me the {things} whose {label(column)} is {v}?",
            f"Could you find {things} with {label(column)} {v} and tell me their {label(name)}?",
            f"I'm looking for {things} with the {label(column)} {v} — what do you have?",
            f"What {things} do you have with the {label(column)} {v}?",
            f"Could you list the {things} where the {label(column)} is {v}?",
            f"Are there any {things} with the {label(column)} {v}? Which ones?",
            f"Can you find me {things} whose {label(column)} is {v}?",
            f"Which of your {things} have {v} as the {label(column)}?",
        ),
        (
            f"I'm browsing a bit today: which {things} have the {label(column)} {v}, by {label(name)}?",
            f"I'd love some help finding {things} with the {label(column)} {v} — what are my options?",
        ),
    )
    p.ask(d, [sid], "search", text, stated=[column])
    extra = {"order_by": sort, "descending": True}
    refined = rows_of(p.executor.call(tool.name, {column: value, **extra}).structured)
    if not refined:
        raise Skip
    high = "latest" if table.columns[sort].is_date else "highest"
    d.refinement = Refinement(
        step=sid,
        arguments=extra,
        description=f"sorted by {label(sort)}, {high} first",
        values=[
            ExpectedValue(step=sid, name=name, value=refined[0].get(name)),
            ExpectedValue(step=sid, name=sort, value=refined[0].get(sort)),
        ],
    )
    p.results[sid] = refined
    d.purposes.append(f"find the {things} with {label(column)} {v}, sorted by {label(sort)}")


# --------------------------------------------------------------------------- writes


def _write_tool(p: Planner, table: Table, column: str, new: Any) -> tuple[str, ToolRule | None]:
    """The tool that sets ``column`` to ``new``: the pack's own when one does exactly that, else the derived update."""
    assert p.policy is not None
    for name, rule in p.policy.tools.items():
        if rule.table == table.name and rule.action == "update" and rule.sets == {column: new} and rule.key:
            return name, rule
    tool = p.tool("update", table.name)
    if tool is None or column not in p.params(tool):
        raise Skip
    return tool.name, None


def _can_edit(p: Planner, table: Table, row: dict[str, Any], column: str) -> bool:
    assert p.policy is not None
    rules = p.policy.rules(table.name)
    if column not in rules.editable:
        return False
    return all(row.get(other) in values for other, values in rules.editable_when.get(column, {}).items())


def _moves(p: Planner, table: Table, row: dict[str, Any], column: str) -> list[Any]:
    """The values the rules let ``column`` of ``row`` become."""
    assert p.policy is not None
    rules = p.policy.rules(table.name)
    if not _can_edit(p, table, row, column):
        return []
    if column in rules.transitions:
        return [v for v in rules.transitions[column].get(str(row.get(column)), []) if v != row.get(column)]
    return [v for v in table.enums.get(column, []) if v != row.get(column)]


def _new_text(p: Planner, table: Table, column: str, current: Any) -> Any:
    others = [
        r[0]
        for r in p.executor.db.query(
            f"SELECT DISTINCT {quote_ident(column)} FROM {quote_ident(table.name)} "
            f"WHERE {quote_ident(column)} IS NOT NULL"
        )
    ]
    others = [o for o in others if o != current and isinstance(o, str) and o.rstrip()[-1:] not in {".", "!", "?"}]
    if not others:
        raise Skip
    value = p.rng.choice(others)
    if any(ch.isdigit() for ch in value) and ("phone" in column or "number" in column):
        digits = [str(p.rng.randrange(10)) if ch.isdigit() and i > len(value) - 5 else ch for i, ch in enumerate(value)]
        value = "".join(digits)
    return value


def update(p: Planner, d: Draft, anchor: Anchor | None) -> None:
    assert_rules(p)
    assert p.policy is not None
    policy = p.policy
    users = p.schema.tables[policy.user_table]
    options: list[Table] = [t for t in p.schema.tables.values() if _owned(p, t) and policy.rules(t.name).editable]
    if policy.rules(users.name).editable:
        options.append(users)
    if anchor is not None and anchor.table in {t.name for t in options} and p.rng.random() < 0.7:
        table = p.schema.tables[anchor.table]
    else:
        if not options:
            raise Skip
        table = p.rng.choice(options)
    if table.pk is None:
        raise Skip

    def texty(c: str) -> bool:
        col = table.columns[c]
        return c not in table.enums and not col.numeric and not col.is_date and c not in table.fks and c != "time"

    def counted(c: str) -> bool:
        col = table.columns[c]
        return "INT" in col.type and not col.pk and c not in table.fks and c not in table.enums

    today = today_of(p).isoformat()

    def ahead(c: str, row: dict[str, Any]) -> bool:
        """A date still to come (a due date, an appointment): it can be moved; one in the past is history."""
        col = table.columns[c]
        value = row.get(c)
        return col.is_date and c not in table.fks and isinstance(value, str) and value[:10] > today

    def changeable(row: dict[str, Any]) -> bool:
        return any(_moves(p, table, row, c) for c in policy.rules(table.name).editable if c in table.enums) or any(
            (texty(c) or counted(c) or ahead(c, row)) and _can_edit(p, table, row, c)
            for c in policy.rules(table.name).editable
            if c in table.columns
        )

    if table is users:
        ref = p.identify(d)
        assert p.me_row is not None
        found = Found(ref, p.me_row, "my account", [], [])
        if not changeable(found.row):
            raise Skip
    else:
        found = find_own(p, d, table, anchor, fits=changeable)
    row = found.row
    editable = [c for c in policy.rules(table.name).editable if c in table.columns and c not in table.fks]
    p.rng.shuffle(editable)
    if p.rng.random() < 0.6:  # a bounded number first: its bound gives a real error to recover from
        editable.sort(key=lambda c: not counted(c))
    column, values = None, []
    limit: tuple[int, str] | None = None
    for c in editable:
        if c in table.enums:
            values = _moves(p, table, row, c)
        elif texty(c) and _can_edit(p, table, row, c) and isinstance(row.get(c), str):
            values = [_new_text(p, table, c, row.get(c))]
        elif counted(c) and not is_flag(c, row.get(c)) and _can_edit(p, table, row, c) and isinstance(row.get(c), int):
            # A number is changed only where the database bounds it: the user first asks one
            # past the bound (a real CHECK error), then the highest that works.
            limit, values = _bounded(p, table, row, c)
        elif ahead(c, row) and _can_edit(p, table, row, c):
            # Moved a week or two later (a due date extended, an appointment put back), as the tool allows.
            day = dt.date.fromisoformat(str(row[c])[:10])
            later = [(day + dt.timedelta(days=n)).isoformat() + str(row[c])[10:] for n in (7, 14)]
            update_tool = p.tool("update", table.name)
            if update_tool is not None and c in p.params(update_tool) and table.pk:
                values = [v for v in later if p.fails(update_tool.name, {table.pk: row[table.pk], c: v}) is None]
        if values:
            column = c
            break
    if column is None:
        raise Skip
    final = p.rng.choice(values)
    tool, rule = _write_tool(p, table, column, final)
    sid = d.step_id()
    if rule is not None and rule.key:
        if rule.key in found.stated:
            step = ChainStep(id=sid, tool=tool, arguments={rule.key: row[rule.key]})
        else:
            ref_step = found.steps[-1] if found.steps else found.ref.step
            step = ChainStep(
                id=sid, tool=tool, refs={rule.key: ValueRef(step=ref_step, field=rule.key, row=found.ref.row)}
            )
    else:
        step = ChainStep(id=sid, tool=tool, arguments={column: final}, refs={table.pk: found.ref})
    others = [v for v in values if v != final]
    first = None
    if limit is not None:
        d.detour = Detour(
            step=sid, arguments={column: limit[0]}, error=limit[1], description=f"{label(column)} {limit[0]}"
        )
        first = limit[0]
    elif rule is None and others and p.rng.random() < 0.3:
        first = p.rng.choice(others)
        d.change_of_mind = ChangeOfMind(step=sid, argument=column, first=first)
    rows = p.run(step, {})
    if not rows:
        raise Skip
    d.steps.append(step)
    step.report = [column]
    said = first if first is not None else final
    if limit is not None:
        d.change_of_mind = None
    v = p.say.value(said, column)
    if rule is not None:
        verb = tool.split("_", 1)[0]
        text = frame(
            p.say,
            (f"{cap(verb)} {found.words}.", f"Please {verb} {found.words}."),
            (
                f"Please {verb} {found.words}.",
                f"I'd like to {verb} {found.words}.",
                f"Could you {verb} {found.words} for me?",
                f"Can you {verb} {found.words}, please?",
                f"Would you {verb} {found.words}, please?",
                f"I want to {verb} {found.words}.",
                f"Is it possible to {verb} {found.words}?",
                f"I'd like you to {verb} {found.words}, if you can.",
                f"I need {found.words} {p.say.value(final, column)}, please.",
            ),
            (
                f"My plans have changed, so I'd like to {verb} {found.words}, if that's possible.",
                f"I'm afraid I need to {verb} {found.words} — would you be able to do that for me?",
            ),
        )
    else:
        text = change_field(p.say, column, found.words, v, said)
    stated = [*found.stated, column] if rule is None else found.stated
    p.ask(d, [*found.steps, sid], "update", text, stated=stated)
    d.values.append(ExpectedValue(step=sid, name=column, value=final))
    d.checks.append(p.field_check(sid, table, column, row[table.pk], final))
    d.purposes.append(f"change the {field_name(column)} of {found.words} to {format_value(final, column)}")
    d.anchors.append(Anchor(sid, table.name, rows[0]))


def _bounded(p: Planner, table: Table, row: dict[str, Any], column: str) -> tuple[tuple[int, str] | None, list[Any]]:
    """(the first value past the column's bound and its error, [the last value that works]), or (None, [])."""
    tool = p.tool("update", table.name)
    if tool is None or column not in p.params(tool) or table.pk is None:
        return None, []
    ok = None
    for value in range(int(row[column]) + 1, int(row[column]) + 6):
        code = p.fails(tool.name, {table.pk: row[table.pk], column: value})
        if code is None:
            ok = value
        elif ok is not None:
            return (value, code), [ok]
        else:
            return None, []
    return None, []


def delete(p: Planner, d: Draft, anchor: Anchor | None) -> None:
    assert_rules(p)
    assert p.policy is not None
    policy = p.policy

    def fits(t: Table) -> bool:
        return _owned(p, t) and policy.rules(t.name).delete and p.tool("delete", t.name) is not None

    table = p.pick_table(fits)
    assert table.pk is not None

    def free(row: dict[str, Any]) -> bool:
        return not any(
            p.executor.db.query(
                f"SELECT 1 FROM {quote_ident(c)} WHERE {quote_ident(col)} = :pk LIMIT 1", {"pk": row[table.pk or ""]}
            )
            for c, col in p.schema.children(table.name)
        )

    found = find_own(p, d, table, anchor, fits=free)
    tool = p.tool("delete", table.name)
    assert tool is not None
    sid = d.step_id()
    step = ChainStep(id=sid, tool=tool.name, refs={table.pk: found.ref})
    p.run(step, {})
    d.steps.append(step)
    text = frame(
        p.say,
        (f"Remove {found.words}.", f"Delete {found.words}, please."),
        (
            f"Please remove {found.words}.",
            f"I'd like {found.words} deleted.",
            f"Could you delete {found.words}?",
            f"Can you take {found.words} off my account?",
            f"I no longer need {found.words} — please delete it.",
            f"Would you remove {found.words} for me?",
        ),
        (f"I don't use it any more, so could you remove {found.words} from my account?",),
    )
    p.ask(d, [*found.steps, sid], "delete", text, stated=found.stated)
    d.checks.append(
        SqlAssertion(
            description=f"{entity(table.name)} {found.row[table.pk]} no longer exists",
            sql=f"SELECT COUNT(*) FROM {quote_ident(table.name)} WHERE {quote_ident(table.pk)} = :pk",
            params={"pk": found.row[table.pk]},
            expected=[[0]],
            step=sid,
        )
    )
    d.purposes.append(f"remove {found.words}")


from simulator.offline.planner.create import create, today_of  # noqa: E402
from simulator.offline.planner.forbidden import forbidden  # noqa: E402


def assert_rules(p: Planner) -> None:
    if p.policy is None or p.user is None:
        raise Skip


KINDS: list[tuple[str, Kind, float]] = [
    ("lookup", lookup, 0.2),
    ("lookup_via", lookup_via, 1.3),
    ("related", related, 3.0),
    ("count", count, 0.4),
    ("browse", browse, 0.2),
    ("update", update, 1.2),
    ("create", create, 1.2),
    ("delete", delete, 0.2),
    ("forbidden", forbidden, 0.75),
]

_ = dt
