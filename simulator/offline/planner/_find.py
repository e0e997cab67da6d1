"""Finding a row the way a person names it: "my order ORD-10046", "my most recent loan", "the Chef's Knife".

Each finder adds the lookup step(s) to the draft, runs them, and returns a reference to
the row, the row itself and the words the user uses for it. Values in those words are
the ones the step is called with, so the request carries everything the agent needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from schemas import ChainStep, ValueRef
from simulator.offline.language import entity, is_code, label
from simulator.offline.planner._base import Anchor, Draft, Skip
from simulator.offline.schema_view import Table
from toolservers.sql import quote_ident

if TYPE_CHECKING:
    from simulator.offline.planner.planner import Planner

__all__ = ["Found", "find_own", "find_public", "name_column"]

#: Things a user does themselves, said as "the loan I had borrowed on ...".
_DONE_BY_ME = frozenset({"placed", "booked", "ordered", "requested", "made", "opened"})
_NAME_HINTS = ("name", "title", "label", "medication", "flight_number", "number", "reference", "code")


@dataclass(slots=True)
class Found:
    ref: ValueRef
    row: dict[str, Any]
    #: How the user names the row ("my order ORD-10046").
    words: str
    #: The lookup steps added (empty when the row came from an anchor).
    steps: list[str]
    #: Arguments the user stated to find it.
    stated: list[str]


def name_column(table: Table) -> str | None:
    """The column that names a row to a person (a name, a title, a number), if any."""
    cols = [c for c in table.columns if not table.columns[c].pk and c not in table.fks]
    for hint in _NAME_HINTS:
        for c in cols:
            if hint in c.lower() and not table.columns[c].numeric:
                return c
    return None


def _owner_fk(p: Planner, table: Table) -> str | None:
    assert p.policy is not None
    rules = p.policy.rules(table.name)
    return rules.owner[0] if len(rules.owner) == 1 else None


def _date_columns(table: Table) -> list[str]:
    return [c for c, col in table.columns.items() if col.is_date and not col.pk]


def find_own(p: Planner, d: Draft, table: Table, anchor: Anchor | None = None, *, fits: Any = None) -> Found:
    """One of the user's rows of ``table`` (directly owned: the table points at the user)."""
    if anchor is not None and anchor.table == table.name and table.pk:
        # The row as it is now: a later task may have changed it since the anchor was taken
        # (an appointment cancelled after it was booked), and what it may become depends on that.
        now = p.query_rows(
            f"SELECT * FROM {quote_ident(table.name)} WHERE {quote_ident(table.pk)} = :pk",
            {"pk": anchor.row.get(table.pk)},
        )
        if now and (fits is None or fits(now[0])):
            return Found(
                ValueRef(step=anchor.step, field=table.pk, row=anchor.index),
                now[0],
                f"that {entity(table.name)}",
                [],
                [],
            )
    fk = _owner_fk(p, table)
    if fk is None or p.user is None or table.pk is None:
        raise Skip
    search = p.tool("search", table.name)
    if search is None:
        raise Skip
    props = p.params(search)
    mine = p.query_rows(
        f"SELECT * FROM {quote_ident(table.name)} WHERE {quote_ident(fk)} = :me ORDER BY rowid", {"me": p.user.pk}
    )
    if fits is not None:
        candidates = [r for r in mine if fits(r)]
    else:
        candidates = mine
    if not candidates:
        raise Skip
    target = p.rng.choice(candidates)
    ways: list[tuple[dict[str, Any], dict[str, Any], str, list[str]]] = []
    thing = entity(table.name)
    key = table.key
    if key and key in props and target.get(key):
        v = target[key]
        short = any(w in key for w in ("number", "reference", "code")) and not key.startswith("postal")
        named = [f"my {thing} {v}", f"{thing} {v}"] if short else []
        ways.append(({key: v}, {}, p.words.choice([*named, f"my {thing} with {label(key)} {v}"]), [key]))
    if fk in props:
        for col in table.enums:
            if col in props and sum(1 for r in mine if r.get(col) == target.get(col)) == 1:
                v = p.say.value(target[col], col)
                said = [f"my {v} {thing}", f"my {v} {thing}", f"the {v} {thing}"]
                if col.lower() in {"status", "state"}:
                    said += [f"my {thing} that's {v}", f"the {thing} that's {v}", f"my {thing} that is {v}"]
                ways.append(({col: target[col]}, {fk: 1}, p.words.choice(said), [col]))
        for col in _date_columns(table):
            lo, hi = f"min_{col}", f"max_{col}"
            if (
                lo in props
                and hi in props
                and target.get(col)
                and sum(1 for r in mine if r.get(col) == target[col]) == 1
            ):
                when = p.say.value(target[col], col)
                verb = label(col).removesuffix(" on").removesuffix(" at").removesuffix(" date")
                if col in {"date", "day"} or verb == col:
                    words = p.words.choice([f"my {thing} on {when}", f"the {thing} on {when}", f"my {when} {thing}"])
                elif verb.endswith("ed"):  # borrowed, placed: what was done then
                    words = p.words.choice(
                        [
                            f"my {thing} {verb} on {when}",
                            f"my {thing} {verb} on {when}",
                            f"the {thing} {verb} on {when}",
                            f"my {thing} that was {verb} on {when}",
                            f"the {thing} I had {verb} on {when}" if verb in _DONE_BY_ME else f"my {thing} from {when}",
                        ]
                    )
                else:  # due: a state
                    words = p.words.choice(
                        [
                            f"my {thing} {verb} on {when}",
                            f"my {thing} {verb} on {when}",
                            f"the {thing} {verb} on {when}",
                            f"my {thing} that's {verb} on {when}",
                        ]
                    )
                ways.append(({lo: target[col], hi: target[col]}, {fk: 1}, words, [lo, hi]))
        order = props.get("order_by", {}).get("enum", [])
        dated = [c for c in _date_columns(table) if c in order]
        for col in dated[:2]:
            values = [str(r[col]) for r in mine if r.get(col) is not None]
            if values and str(target.get(col)) == max(values) and values.count(str(target[col])) == 1:
                verb = label(col).removesuffix(" on").removesuffix(" at")
                latest = p.words.choice(
                    [
                        f"my most recent {thing}",
                        f"my latest {thing}",
                        f"my newest {thing}",
                        f"the most recent {thing} on my account",
                    ]
                )
                ways.append(({"order_by": col, "descending": True, "limit": 1}, {fk: 1}, latest, []))
                break
        for col, c in table.columns.items():
            if c.numeric or c.pk or col in table.fks or col in table.enums or c.is_date or col not in props:
                continue
            v = target.get(col)
            if isinstance(v, str) and 3 <= len(v) <= 40 and sum(1 for r in mine if r.get(col) == v) == 1:
                ways.append(({col: v}, {fk: 1}, f"my {thing} with {label(col)} {v}", [col]))
    if not ways:
        raise Skip
    args, needs_me, words, stated = p.rng.choice(ways)
    refs = {}
    if needs_me:
        refs[fk] = p.identify(d)
    else:
        p.identify(d)  # the agent checks that the row is the user's: it needs to know who they are
    sid = d.step_id()
    step = ChainStep(id=sid, tool=search.name, arguments=dict(args), refs=refs)
    rows = p.run(step, {})
    if not rows or rows[0].get(table.pk) != target.get(table.pk):
        raise Skip
    if not needs_me and len(rows) != 1:
        raise Skip
    d.steps.append(step)
    return Found(ValueRef(step=sid, field=table.pk), rows[0], words, [sid], stated)


def find_public(p: Planner, d: Draft, table: Table, *, fits: Any = None) -> Found:
    """A public row named by its name, title or number (``search_products(name="Chef's Knife")``).

    People are named by first and last name; a name several rows share (a flight number
    flown every day) is narrowed by the row's date.
    """
    search = p.tool("search", table.name)
    if search is None or table.pk is None:
        raise Skip
    props = p.params(search)
    people = "first_name" in table.columns and "last_name" in table.columns
    column = "last_name" if people else name_column(table)
    if column is None or column not in props:
        raise Skip
    rows = p.query_rows(f"SELECT * FROM {quote_ident(table.name)} ORDER BY rowid")
    if fits is not None:
        rows = [r for r in rows if fits(r)]
    p.rng.shuffle(rows)
    for target in rows[:6]:
        value = target.get(column)
        if not isinstance(value, str) or not value:
            continue
        args: dict[str, Any] = {column: value}
        if is_code(value):
            words = f"{entity(table.name)} {value}"  # "copy C292985031", not "the C292985031"
        elif column == "title" or value.split(" ", 1)[0] in {"The", "A", "An"}:
            words = value  # a book's title is said as it is
        else:
            words = f"the {value}"
        if people:
            words = f"{target['first_name']} {target['last_name']}"
            if "first_name" in props:
                args["first_name"] = target["first_name"]
        sid = d.step_id()
        step = ChainStep(id=sid, tool=search.name, arguments=args)
        found = p.run(step, {})
        if len(found) > 1:
            for col in _date_columns(table):
                lo, hi = f"min_{col}", f"max_{col}"
                if lo in props and hi in props and target.get(col):
                    args.update({lo: target[col], hi: target[col]})
                    words = f"{words} on {p.say.value(target[col], col)}"
                    step = ChainStep(id=sid, tool=search.name, arguments=args)
                    found = p.run(step, {})
                    break
        if len(found) == 1 and found[0].get(table.pk) == target.get(table.pk):
            d.steps.append(step)
            return Found(ValueRef(step=sid, field=table.pk), found[0], words, [sid], list(args))
    raise Skip
