"""Add a row: a booking, an order, an appointment (the pack's own tool) or a plain row (the derived one).

Every argument is either the user's own row (found by identification), a public row the
user names (a product, a doctor, a flight), or a value the user says. Some requests first
ask for a value the tool refuses (more units than are in stock, a time that is not a
slot): a detour through a real error, after which the user accepts what is possible.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from schemas import ChainStep, Detour, ExpectedValue, SqlAssertion, ValueRef
from simulator.offline.language import a, cap, entity, field_name, format_value, join, label
from simulator.offline.planner._base import Anchor, Draft, Skip, first_that_plans
from simulator.offline.planner._find import find_public
from simulator.offline.planner._words import frame
from simulator.offline.schema_view import Table
from toolservers.sql import quote_ident

if TYPE_CHECKING:
    from simulator.offline.planner.planner import Planner

__all__ = ["create", "today_of"]

_REASONS = (
    "a routine check-up",
    "a follow-up visit",
    "persistent back pain",
    "a repeat prescription review",
    "a sore throat",
    "knee pain after running",
    "blood test results",
    "headaches",
)
_TODAY = dt.date(2026, 5, 4)


def today_of(p: Planner) -> dt.date:
    """The day the rules call today (an outside database without one: 4 May 2026)."""
    if p.policy is not None and p.policy.today:
        return dt.date.fromisoformat(p.policy.today)
    return _TODAY


def _candidates(p: Planner) -> list[tuple[str, dict[str, Any], str]]:
    """(tool, table of the new row, kind) for every way the user may add a row."""
    assert p.policy is not None
    out: list[tuple[str, dict[str, Any], str]] = []
    composite_tables = set()
    for name, rule in p.policy.tools.items():
        if rule.action == "create":
            composite_tables.add(rule.table)
            out.append((name, {"table": rule.table}, "composite"))
    for t in p.schema.tables.values():
        rules = p.policy.rules(t.name)
        if len(rules.owner) == 1 and rules.create and t.name not in composite_tables and p.tool("create", t.name):
            out.append((p.tool("create", t.name).name, {"table": t.name}, "derived"))  # type: ignore[union-attr]
    return out


def create(p: Planner, d: Draft, anchor: Anchor | None) -> None:
    from simulator.offline.planner.kinds import assert_rules

    assert_rules(p)
    options = _candidates(p)
    if not options:
        raise Skip
    tool_name, info, kind = p.rng.choice(options)
    table = p.schema.tables[info["table"]]
    first_that_plans(p, d, (lambda: _attempt(p, d, tool_name, table, kind) for _ in range(6)))


def _public_table_for(p: Planner, param: str, table: Table) -> Table | None:
    assert p.policy is not None
    fk = table.fks.get(param)
    if fk is not None and p.policy.rules(fk[0]).public:
        return p.schema.tables.get(fk[0])
    for t in p.schema.tables.values():
        if t.pk == param and p.policy.rules(t.name).public:
            return t
    return None


def _borrow(p: Planner, table: Table, column: str) -> Any:
    rows = p.executor.db.query(
        f"SELECT {quote_ident(column)} FROM {quote_ident(table.name)} WHERE {quote_ident(column)} IS NOT NULL"
    )
    if not rows:
        raise Skip
    return p.rng.choice(rows)[0]


def _attempt(p: Planner, d: Draft, tool_name: str, table: Table, kind: str) -> None:
    assert p.policy is not None and p.user is not None
    tool = p.environment.tool(tool_name)
    props: dict[str, Any] = tool.input_schema.get("properties", {})
    required = set(tool.input_schema.get("required", []))
    rules = p.policy.rules(table.name)
    args: dict[str, Any] = {}
    refs: dict[str, ValueRef] = {}
    phrases: list[str] = []
    stated: list[str] = []
    steps: list[str] = []
    found_rows: list[dict[str, Any]] = []
    dates: list[str] = []
    times: list[str] = []
    ints: list[str] = []
    for name, schema in props.items():
        if name == p.user.column:
            refs[name] = p.identify(d)
            continue
        public = _public_table_for(p, name, table)
        if public is not None:
            found = find_public(p, d, public)
            refs[name] = found.ref
            found_rows.append(found.row)
            phrases.append(f"for {found.words}")
            stated += found.stated
            steps += found.steps
            continue
        if name.endswith("_id"):
            if name in required:
                raise Skip  # another of the user's rows would be needed: kept simple
            continue
        if name not in required and not (kind == "derived" and name in table.enums):
            if name == "card_last4":
                continue
            if name not in table.columns or name not in table.enums:
                continue
        kind_of = schema.get("type")
        pattern = str(schema.get("pattern", ""))
        if "enum" in schema:
            allowed = [v for v in schema["enum"] if v is not None]
            initial = rules.initial.get(name)
            if initial:
                allowed = [v for v in allowed if v in initial] or allowed
            elif kind == "derived":
                allowed = allowed[:1]  # a CHECK list is written in life-cycle order: a new row starts at the first
            args[name] = p.rng.choice(allowed)
            v = p.say.value(args[name], name)
            phrases.append(
                p.words.choice(
                    [
                        f"{label(name)} {v}",
                        f"with the {label(name)} {v}",
                        f"{label(name)} set to {v}",
                        f"with {v} as the {label(name)}",
                        f"the {label(name)} being {v}",
                    ]
                )
                if name != "status"
                else p.words.choice(
                    [f"status {v}", f"marked as {v}", f"with the status {v}", f"set to {v}", f"as {v}", f"marked {v}"]
                )
            )
        elif "date" in name or "\\d{4}" in pattern or schema.get("format") in {"date", "date-time"}:
            dates.append(name)
        elif name == "time" or ":" in pattern:
            times.append(name)
        elif kind_of == "integer":
            ints.append(name)
        elif kind_of == "number":
            args[name] = _borrow(p, table, name) if name in table.columns else 1.0
            phrases.append(f"{label(name)} {p.say.value(args[name], name)}")
        else:
            if name == "reason" and kind == "composite":
                args[name] = p.rng.choice(_REASONS)
                phrases.append(f"for {args[name]}")
            elif name in table.columns:
                value = _borrow(p, table, name)
                if p.executor.db.query(
                    f"SELECT COUNT(DISTINCT {quote_ident(name)}) = COUNT(*) FROM {quote_ident(table.name)}"
                )[0][0] and isinstance(value, str):
                    value = "".join(str(p.rng.randrange(10)) if ch.isdigit() else ch for ch in value)
                args[name] = value
                phrases.append(f"{label(name)} {p.say.value(value, name)}")
            else:
                raise Skip
        stated.append(name) if name in args else None
    if "payment_method" in args and "card_last4" in props:
        args["payment_method"] = p.rng.choice(["card", "card", "paypal", "bank_transfer"])
        phrases = [x for x in phrases if "payment method" not in x]
        phrases.append(f"paying by {format_value(args['payment_method'])}")
        if args["payment_method"] == "card":
            args["card_last4"] = f"{p.rng.randrange(10000):04d}"
            phrases.append(f"with the card ending in {args['card_last4']}")
            stated.append("card_last4")
    resolved = {n: p.value(r) for n, r in refs.items()}
    for name in ints:
        schema = props[name]
        limit = min(int(schema.get("maximum", 3)), 3)
        args[name] = p.rng.randint(1, max(1, limit))
        stated.append(name)
    today = today_of(p)
    # A new row's dates in the table's order: the first is the day it is made (a loan's
    # borrowed-on day, today or a few days ago), each later one as far after it as is usual
    # in the table (due three weeks later), so the dates are coherent.
    dates.sort(key=lambda n: list(table.columns).index(n) if n in table.columns else len(table.columns))
    gaps = {n: _usual_gap(p, table, dates[0], n) for n in dates[1:]} if kind == "derived" and dates else {}
    if kind == "derived" and dates and (p.policy is None or not p.policy.today):
        # No "today" in the rules: the latest day a row was made stands in for it.
        latest = p.executor.db.query(f"SELECT MAX({quote_ident(dates[0])}) FROM {quote_ident(table.name)}")[0][0]
        if latest and dates[0] in table.columns:
            today = dt.date.fromisoformat(str(latest)[:10])
    for _ in range(30):
        # A plain row records something of the past few days (most often today: a loan taken
        # out on Thursday and not yet on the account), its later dates the usual gap after it.
        start = today - dt.timedelta(days=p.rng.choice((0, 0, 0, 1, 1, 2, 3, 4, 5, 6)))
        for name in dates:
            if kind == "composite":
                day = today + dt.timedelta(days=p.rng.randint(1, 24))
            else:
                day = start + dt.timedelta(days=gaps.get(name, 0))
            args[name] = day.isoformat()
        for name in times:
            args[name] = f"{p.rng.randint(8, 16):02d}:{p.rng.choice(['00', '30'])}"
        if p.fails(tool.name, {**args, **resolved}) is None:
            break
        if not dates and not times:
            raise Skip
    else:
        raise Skip
    for name in dates:
        stated.append(name)
        when = p.say.value(args[name], name)
        if name in {"date", "day"} or name.endswith("_date"):
            phrases.append(p.words.choice([f"on {when}", f"for {when}"]))
        elif name.lower().endswith(("_on", "_at")):
            # The label is a verb phrase ("borrowed on", "due on"): said as it is, never "the borrowed on".
            verb = label(name).rsplit(" ", 1)[0]
            frames = [f"{label(name)} {when}", f"{label(name)} {when}", f"{verb} {when}"]
            if not name.lower().split("_", 1)[0].endswith("ed"):
                frames.append(f"with the {field_name(name)} {when}")
                if name.lower().endswith("_on"):
                    frames.append(f"{verb} by {when}")
            phrases.append(p.words.choice(frames))
        else:
            phrases.append(
                p.words.choice(
                    [
                        f"{label(name)} {when}",
                        f"with the {label(name)} {when}",
                        f"{label(name)}: {when}",
                        f"{label(name)} {when}",
                    ]
                )
            )
    for name in times:
        stated.append(name)
        phrases.append(f"at {args[name]}")
    detour = _detour(p, tool.name, props, args, resolved, found_rows, ints, times)
    first = dict(args)
    if detour is not None:
        first.update(detour.arguments)
    for name in ints:
        phrases.append(_amount(name, first[name]))
    for name in times:
        phrases = [f"at {first[name]}" if x == f"at {args[name]}" else x for x in phrases]
    sid = d.step_id()
    step = ChainStep(id=sid, tool=tool.name, arguments=dict(args), refs=refs)
    rows = p.run(step, resolved)
    if not rows:
        raise Skip
    d.steps.append(step)
    if detour is not None:
        detour.step = sid
    d.detour = detour
    noun = entity(table.name)
    if kind == "composite":
        verb, obj = tool.name.split("_", 1)[0], a(tool.name.split("_", 1)[1].replace("_", " "))
    else:  # a plain row: added, recorded or registered
        verb = p.words.choice(["add", "add", "add", "record", "register"])
        obj = p.words.choice([f"a new {noun}", f"a new {noun}", a(noun)])
    # What it is for comes first ("for copy C1"); the rest in the order the user thinks of it.
    firsts = [x for x in phrases if x.startswith("for ")]
    rest = [x for x in phrases if not x.startswith("for ")]
    p.words.shuffle(rest)
    body = join([*firsts, *rest], "and")
    text = frame(
        p.say,
        (
            f"{verb.capitalize()} {obj} {body}.",
            f"Need to {verb} {obj}: {body}.",
            f"{cap(obj)}, please: {body}.",
            f"{cap(obj)} — {body}.",
            f"Can you {verb} {obj}? {cap(body)}.",
            f"{verb.capitalize()} {obj}, {body}, please.",
        ),
        (
            f"I'd like to {verb} {obj} {body}.",
            f"Could you {verb} {obj} for me, {body}?",
            f"Can you {verb} {obj}? That's {body}.",
            f"Please {verb} {obj} {body}.",
            f"I want to {verb} {obj}: {body}.",
            f"Would you {verb} {obj} for me? {cap(body)}.",
            f"Could I {verb} {obj}, please? It's {body}.",
            f"I'm looking to {verb} {obj} — {body}.",
            f"Can I {verb} {obj}? It's {body}.",
            f"I need to {verb} {obj}, {body}.",
            f"Could you set me up with {obj}? {cap(body)}.",
            f"I'd like {obj}, please: {body}.",
            f"Would you be able to {verb} {obj}, {body}?",
            f"Please could you {verb} {obj}? The details: {body}.",
            f"I'd like you to {verb} {obj}, {body}.",
            f"Is it possible to {verb} {obj} {body}?",
            f"Could we {verb} {obj}? It should be {body}.",
            f"Can you put {obj} in for me? {cap(body)}.",
            f"I'm hoping you can {verb} {obj} — {body}.",
            f"Would you mind {_gerund(verb)} {obj}, {body}?",
            f"Please {verb} {obj} for me: {body}.",
        ),
        (
            f"I've been meaning to do this for a while: could you {verb} {obj} {body}?",
            f"Would you be able to {verb} {obj} for me? It would be {body}.",
            f"I wonder if you could help me {verb} {obj}; it's {body}.",
            f"Right, so I'd like to {verb} {obj}. The details are: {body}.",
            f"If it's not too much trouble, could you {verb} {obj} for me — {body}?",
        ),
    )
    key = table.key
    reported = [k for k in (key,) if k and k in rows[0]]
    money = [k for k in ("total", "total_price") if k in rows[0] and rows[0][k] is not None]
    if money and p.rng.random() < 0.6:
        reported.append(money[0])
        text = text.rstrip(".?!") + p.words.choice(
            [
                ", and what will it cost in total?",
                ", and tell me the total, please.",
                " — how much is that in total?",
                ", and let me know the total price.",
                ", and what does that come to?",
            ]
        )
    step.report = reported
    p.ask(d, [*steps, sid], "create", text, stated=list(dict.fromkeys(stated)))
    for k in reported:
        d.values.append(ExpectedValue(step=sid, name=k, value=rows[0][k]))
    if table.pk and table.pk in rows[0]:
        new_pk = rows[0][table.pk]
        # The new row as the tool returned it (its key included), so the check cannot hold before the write.
        cols = [c for c in rows[0] if c in table.columns and not isinstance(rows[0][c], float)]
        cols += [c for c in (p.user.column, *args) if c in table.columns and c not in cols and c not in rows[0]]
        check_values = {c: rows[0][c] if c in rows[0] else args.get(c) for c in cols}
        check = p.row_exists(sid, table.name, check_values, f"a new {noun}")
        d.checks.append(check)

        def final() -> SqlAssertion:
            now = p.executor.db.query(
                f"SELECT {', '.join(quote_ident(c) for c in cols)} FROM {quote_ident(table.name)} "
                f"WHERE {quote_ident(table.pk or '')} = :pk",
                {"pk": new_pk},
            )
            if not now:
                return SqlAssertion(
                    description=check.description + " (then removed)",
                    sql=check.sql,
                    params=check.params,
                    expected=[[0]],
                )
            return p.row_exists(sid, table.name, dict(zip(cols, now[0], strict=True)), check.description)

        d.finals[len(d.checks) - 1] = final
        d.anchors.append(Anchor(sid, table.name, rows[0]))
    d.purposes.append(f"{verb} {obj} {body}")


def _gerund(verb: str) -> str:
    """``add`` -> ``adding``, ``place`` -> ``placing``, ``book`` -> ``booking``."""
    if verb == "add":
        return "adding"
    return (verb[:-1] if verb.endswith("e") and not verb.endswith("ee") else verb) + "ing"


def _usual_gap(p: Planner, table: Table, first: str, later: str) -> int:
    """The usual number of days between ``first`` and ``later`` in ``table``'s rows (the median; 0 if none)."""
    if first not in table.columns or later not in table.columns:
        return 0
    a_, b_ = quote_ident(first), quote_ident(later)
    rows = p.executor.db.query(
        f"SELECT CAST(julianday({b_}) - julianday({a_}) AS INTEGER) AS gap FROM {quote_ident(table.name)} "
        f"WHERE {a_} IS NOT NULL AND {b_} IS NOT NULL ORDER BY gap"
    )
    gaps = [int(r[0]) for r in rows if r[0] is not None]
    return max(0, gaps[len(gaps) // 2]) if gaps else 0


def _amount(name: str, n: int) -> str:
    if name in {"quantity", "units", "amount"}:
        return f"{n} {'unit' if n == 1 else 'units'}"
    if name in {"seats", "rooms", "nights", "tickets", "guests"}:
        return f"{n} {name[:-1] if n == 1 else name}"
    return f"{label(name)} {n}"


def _detour(
    p: Planner,
    tool: str,
    props: dict[str, Any],
    args: dict[str, Any],
    resolved: dict[str, Any],
    found: list[dict[str, Any]],
    ints: list[str],
    times: list[str],
) -> Detour | None:
    """A first value the tool refuses for real: more than is available, beyond the limit, not a slot."""
    if p.rng.random() > 0.6:
        return None
    options: list[tuple[dict[str, Any], str]] = []
    for name in ints:
        for row in found:
            for col, v in row.items():
                if isinstance(v, int) and ("stock" in col or "available" in col) and 0 < v < 20:
                    options.append(({name: v + p.rng.randint(1, 3)}, f"more {label(name)} than are available"))
        maximum = props[name].get("maximum")
        if isinstance(maximum, int):
            options.append(({name: maximum + p.rng.randint(1, 4)}, f"more {label(name)} than one booking allows"))
    for name in times:
        hour = args[name][:2]
        options.append(({name: f"{hour}:{p.rng.choice(['15', '45', '10'])}"}, "a time that is not a slot"))
    p.rng.shuffle(options)
    for first, description in options:
        code = p.fails(tool, {**args, **resolved, **first})
        if code is not None:
            return Detour(step="", arguments=first, error=code, description=description)
    return None
