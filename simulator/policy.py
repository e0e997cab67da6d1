"""Policies as data: loading a pack's ``policy.toml``, deriving rules from any schema,
rendering them as text, and finding who owns a row.

``derive_policy`` reads what a schema says: the user table (the one people are: it has
an email, a phone or a name, and other tables point at it), who owns what (the
foreign-key path from a table to the user table), which columns a user may change (not
keys, not links, not the columns that identify them). CHECK lists and NOT NULL are
enforced by the derived tools' schemas and the database; an optional policy file adds
transitions and the rest (see :func:`load_policy_file`).
"""

from __future__ import annotations

import tomllib
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from schemas import Environment
from schemas.errors import ConfigError
from schemas.policy import Policy, TableRules

__all__ = [
    "Query",
    "attach_rules",
    "complete_policy",
    "derive_policy",
    "load_policy_file",
    "owner_of",
    "parse_policy",
    "render_rules",
]

Query = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]

_IDENTIFY_HINTS = ("email", "phone", "card_number", "username", "member_number", "customer_number")
_PERSON_HINTS = ("email", "phone", "first_name", "last_name", "name", "date_of_birth")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _tables(query: Query) -> list[str]:
    rows = query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name", {})
    return [str(r[0]) for r in rows]


def _columns(query: Query, table: str) -> list[tuple[str, bool, bool]]:
    """(name, notnull, pk) per column."""
    return [(str(r[1]), bool(r[3]), bool(r[5])) for r in query(f"PRAGMA table_info({_q(table)})", {})]


def _fks(query: Query, table: str) -> dict[str, tuple[str, str | None]]:
    """column -> (parent table, parent column or None for its primary key)."""
    out: dict[str, tuple[str, str | None]] = {}
    for r in query(f"PRAGMA foreign_key_list({_q(table)})", {}):
        out[str(r[3])] = (str(r[2]), None if r[4] is None else str(r[4]))
    return out


def _pk(query: Query, table: str) -> str | None:
    pks = [name for name, _, pk in _columns(query, table) if pk]
    return pks[0] if len(pks) == 1 else None


def parse_policy(text: str, *, source: str) -> Policy:
    """A policy from TOML text; raises ConfigError naming ``source`` when it does not fit the schema."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML ({exc})") from None
    try:
        return msgspec.convert(data, Policy)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: not a policy ({exc})") from None


def complete_policy(policy: Policy, query: Query, *, source: str) -> Policy:
    """Check ``policy`` against the database behind ``query`` and fill in ``owner_tables``.

    Raises ConfigError naming ``source`` for a table or column the database does not have,
    or an ownership path that does not follow foreign keys to the user table.
    """
    tables = set(_tables(query))
    if policy.user_table not in tables:
        raise ConfigError(f"{source}: user_table {policy.user_table!r} is not a table of the database")
    user_cols = {c for c, _, _ in _columns(query, policy.user_table)}
    for col in policy.identify_by:
        if col not in user_cols:
            raise ConfigError(f"{source}: identify_by column {col!r} is not a column of {policy.user_table}")
    done: dict[str, TableRules] = {}
    for name, rules in policy.tables.items():
        if name not in tables:
            raise ConfigError(f"{source}: tables.{name}: no such table in the database")
        cols = {c for c, _, _ in _columns(query, name)}
        for col in [*rules.editable, *rules.transitions, *rules.initial, *rules.side_effects, *rules.editable_when]:
            if col not in cols:
                raise ConfigError(f"{source}: tables.{name}: {col!r} is not a column of {name}")
        path: list[str] = []
        table = name
        for col in rules.owner:
            link = _fks(query, table).get(col)
            if link is None:
                raise ConfigError(f"{source}: tables.{name}.owner: {table}.{col} is not a foreign key")
            table = link[0]
            path.append(table)
        if rules.owner and table != policy.user_table:
            raise ConfigError(f"{source}: tables.{name}.owner ends at {table}, not at {policy.user_table}")
        done[name] = msgspec.structs.replace(rules, owner_tables=path)
    return msgspec.structs.replace(policy, tables=done)


def load_policy_file(path: Path, query: Query) -> Policy:
    """Read a policy TOML file and check it against the database; raises ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from None
    return complete_policy(parse_policy(text, source=str(path)), query, source=str(path))


def derive_policy(query: Query, *, today: str | None = None) -> Policy | None:
    """Rules read from a schema alone, or None when no table looks like the users'.

    The user table is the table with the most person-like columns among those other
    tables point at; every table with a foreign-key path to it is owned (shortest path),
    the others are public. Users may add and change their owned rows' plain columns
    (not keys, links or the columns that identify them) and remove none.
    """
    names = _tables(query)
    fks = {t: _fks(query, t) for t in names}
    referenced = {parent for t in names for parent, _ in fks[t].values()}
    best: tuple[int, int, str] | None = None
    for t in names:
        cols = [c.lower() for c, _, _ in _columns(query, t)]
        person = sum(1 for h in _PERSON_HINTS if any(h == c or c.endswith("_" + h) for c in cols))
        ident = [h for h in _IDENTIFY_HINTS if any(h in c for c in cols)]
        if t not in referenced or not ident or person < 2:
            continue
        score = (person, sum(1 for u in names for p, _ in fks[u].values() if p == t), t)
        if best is None or score[:2] > best[:2]:
            best = score
    if best is None:
        return None
    user = best[2]
    user_cols = [c for c, _, _ in _columns(query, user)]
    identify = [c for h in _IDENTIFY_HINTS for c in user_cols if h in c.lower() and _unique(query, user, c)]
    identify = list(dict.fromkeys(identify))
    if not identify:
        return None
    paths = _owner_paths(user, names, fks)
    tables: dict[str, TableRules] = {}
    for t in names:
        plain = [c for c, _, pk in _columns(query, t) if not pk and c not in fks[t] and c not in identify]
        if t == user:
            tables[t] = TableRules(editable=[c for c in plain if not c.lower().endswith(("_on", "_at"))])
        elif t in paths:
            owner, owner_tables = paths[t]
            tables[t] = TableRules(owner=owner, owner_tables=owner_tables, create=True, editable=plain)
        else:
            tables[t] = TableRules(public=True)
    return Policy(user_table=user, identify_by=identify, tables=tables, today=today)


def _unique(query: Query, table: str, column: str) -> bool:
    distinct, total, rows = query(
        f"SELECT COUNT(DISTINCT {_q(column)}), COUNT({_q(column)}), COUNT(*) FROM {_q(table)}", {}
    )[0]
    return bool(rows) and distinct == total == rows


def _owner_paths(
    user: str, names: list[str], fks: dict[str, dict[str, tuple[str, str | None]]]
) -> dict[str, tuple[list[str], list[str]]]:
    """table -> (fk columns, tables they lead to) on the shortest path to ``user``."""
    out: dict[str, tuple[list[str], list[str]]] = {}
    for t in names:
        if t == user:
            continue
        seen = {t}
        todo: deque[tuple[str, list[str], list[str]]] = deque([(t, [], [])])
        while todo:
            table, cols, via = todo.popleft()
            if table == user and cols:
                out[t] = (cols, via)
                break
            for col, (parent, _) in sorted(fks.get(table, {}).items()):
                if parent not in seen and parent in fks:
                    seen.add(parent)
                    todo.append((parent, [*cols, col], [*via, parent]))
    return out


def owner_of(policy: Policy, query: Query, table: str, row: dict[str, Any]) -> Any:
    """The primary key of the user who owns ``row`` of ``table``, or None (public, or a broken link).

    Follows the foreign keys of ``TableRules.owner`` through the database behind ``query``.
    """
    if table == policy.user_table:
        pk = _pk(query, table)
        return row.get(pk) if pk else None
    rules = policy.rules(table)
    if not rules.owner:
        return None
    current = row
    here = table
    for col, parent in zip(rules.owner, rules.owner_tables, strict=False):
        value = current.get(col)
        if value is None:
            return None
        target = _fks(query, here).get(col, (parent, None))[1] or _pk(query, parent)
        if target is None:
            return None
        if parent == policy.user_table:
            return value if target == _pk(query, parent) else _lookup_pk(query, parent, target, value)
        found = query(f"SELECT * FROM {_q(parent)} WHERE {_q(target)} = :v LIMIT 1", {"v": value})
        if not found:
            return None
        names = [c for c, _, _ in _columns(query, parent)]
        current = dict(zip(names, found[0], strict=False))
        here = parent
    return None


def _lookup_pk(query: Query, table: str, column: str, value: Any) -> Any:
    pk = _pk(query, table)
    if pk is None:
        return None
    found = query(f"SELECT {_q(pk)} FROM {_q(table)} WHERE {_q(column)} = :v LIMIT 1", {"v": value})
    return found[0][0] if found else None


def _words(column: str) -> str:
    return column.replace("_", " ")


def _values(values: list[Any]) -> str:
    shown = [f"`{v}`" for v in values]
    if len(shown) <= 1:
        return "".join(shown)
    return ", ".join(shown[:-1]) + " or " + shown[-1]


def render_rules(policy: Policy) -> str:
    """The rules as a Markdown list, for a model agent's prompt and the pack's policy text."""
    user = _words(policy.user_table)
    lines = [
        f"- Identify the user first, by their {_values(policy.identify_by).replace('`', '').replace('_', ' ')} "
        f"(one of the {user}); never share or change another person's records.",
    ]
    if policy.today:
        lines.append(f"- Today is {policy.today}.")
    if policy.confirm_writes:
        lines.append(
            "- Before any change (adding, changing or removing anything) say exactly what you will do "
            "and wait for the user's explicit yes."
        )
    for name, rules in sorted(policy.tables.items()):
        label = _words(name)
        if rules.public:
            extra = f" (the {_list(list(map(_words, rules.side_effects)))} change only as a result of other changes)"
            lines.append(
                f"- {label.capitalize()} are public: anyone may ask about them{extra if rules.side_effects else ''}."
            )
            continue
        if name != policy.user_table and not rules.owner:
            continue
        things = "their own record" if name == policy.user_table else f"their own {label}"
        can = []
        if rules.create:
            can.append(f"add {label}")
        if rules.editable:
            can.append(f"change the {_list(list(map(_words, rules.editable)))} of {things}")
        if rules.delete:
            can.append(f"remove {things}")
        sentence = f"the user may {_list(can)}" if can else f"the user may only ask about {things}"
        if not rules.delete and name != policy.user_table:
            sentence += "; they are never deleted"
        lines.append(f"- {label.capitalize()}: {sentence}.")
        for col, allowed in sorted(rules.initial.items()):
            lines.append(f"  - A new one starts with {_words(col)} {_values(allowed)}.")
        for col, moves in sorted(rules.transitions.items()):
            for old, new in sorted(moves.items()):
                if new:
                    lines.append(f"  - {_words(col).capitalize()} `{old}` may become {_values(new)}.")
            frozen = sorted(set(_all_values(moves)) - {k for k, v in moves.items() if v})
            if frozen:
                lines.append(f"  - {_words(col).capitalize()} {_values(frozen)} cannot change.")
        for col, cond in sorted(rules.editable_when.items()):
            for other, values in sorted(cond.items()):
                lines.append(
                    f"  - {_words(col).capitalize()} can change only while {_words(other)} is {_values(values)}."
                )
    lines += [f"- {note}" for note in policy.notes]
    return "\n".join(lines)


def _list(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _all_values(moves: dict[str, list[Any]]) -> list[str]:
    out = list(moves)
    for new in moves.values():
        out += [str(v) for v in new]
    return out


def attach_rules(environment: Environment, *, policy_file: Path | None = None) -> Environment:
    """``environment`` with rules: its own, those of ``policy_file`` (or a ``<database>.policy.toml``
    beside its SQLite file), or those its schema implies; the policy text gets the rules in words.

    Raises ConfigError for a policy file that does not fit the database.
    """
    from toolservers.database import open_database

    if environment.rules is not None:
        return environment
    if policy_file is None and environment.database.path is not None:
        side = Path(environment.database.path).with_suffix(".policy.toml")
        policy_file = side if side.is_file() else None
    db = open_database(environment.database)
    try:
        if policy_file is not None:
            rules: Policy | None = load_policy_file(policy_file, db.query)
        else:
            rules = derive_policy(db.query)
    finally:
        db.close()
    if rules is None:
        return environment
    text = environment.policy or f"You help the users of the {environment.domain} service."
    return msgspec.structs.replace(environment, rules=rules, policy=text.rstrip() + "\n\n" + render_rules(rules) + "\n")
