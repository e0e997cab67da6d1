"""What a database's tables and columns hold, and what to call them (for ``derive``).

``read_tables`` reads the schema (types, keys, foreign keys, CHECK lists) and takes one
look at the data (storage classes, ISO dates, text columns with few values) to decide
what each column is. The words are naive on purpose: derived tools need the names a
person would pick for ordinary tables (``invoice_lines``, ``categories``, ``club``),
not a full English inflector.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from toolservers.sql import quote_ident, quote_literal

__all__ = [
    "FORMATS",
    "Column",
    "Names",
    "Reference",
    "Table",
    "describe",
    "humanize",
    "is_id_like",
    "noun",
    "param_name",
    "plural",
    "quote_ident",
    "quote_literal",
    "read_tables",
    "singular",
    "snake",
    "words",
]

#: How each date format the tools accept is spelled out to a model.
FORMATS = {"date": "YYYY-MM-DD", "date-time": "YYYY-MM-DD HH:MM:SS", "time": "HH:MM:SS"}
_ID_WORDS = frozenset({"id", "uuid", "guid"})
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NOT_WORD = re.compile(r"[^A-Za-z0-9]+")


def words(name: str) -> list[str]:
    """``InvoiceLine`` / ``invoice_line`` / ``invoice line`` -> ``["invoice", "line"]``."""
    return [w.lower() for w in _NOT_WORD.split(_CAMEL.sub("_", name)) if w]


def snake(name: str) -> str:
    """A snake_case identifier of ASCII letters, digits and ``_``; never empty."""
    out = "_".join(words(name)) or "t"
    return f"t_{out}" if out[0].isdigit() else out


def humanize(name: str) -> str:
    """``unit_price`` -> ``unit price``."""
    return " ".join(words(name)) or name


def is_id_like(name: str) -> bool:
    """Whether a column name says it holds an identifier (``id``, ``customer_id``, ``CustomerId``)."""
    w = words(name)
    return bool(w) and w[-1] in _ID_WORDS


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def noun(column: str, kind: str) -> str:
    """How a sentence calls a column: ``unit price``, ``placed on date``."""
    h = humanize(column)
    return f"{h} date" if kind == "date" and words(column)[-1:] == ["on"] else h


def describe(column: str, *, owner: str, kind: str, fmt: str | None = None, fk: tuple[str, str] | None = None) -> str:
    """A column's description for a schema: ``The customer's id``, ``Placed on date (YYYY-MM-DD)``.

    ``owner`` is the singular name of the column's table, ``kind`` what the column holds
    (``date``, ``bool``, ...), ``fk`` the (table, column) it refers to.
    """
    w = words(column) or [column]
    who = humanize(owner)
    refers = f" (refers to {fk[0]}.{fk[1]})" if fk else ""
    if kind == "date" and fmt:
        return f"{_cap(noun(column, kind))} ({FORMATS[fmt]})"
    if kind == "bool":
        verb, rest = (w[0], w[1:]) if w[0] in {"is", "has", "can", "was"} and len(w) > 1 else ("is", w)
        return f"Whether the {who} {verb} {' '.join(rest)}"
    if w[-1] in _ID_WORDS:
        return f"The {' '.join(w[:-1]) or who}'s {w[-1]}{refers}"
    if fk:
        return f"{_cap(humanize(column))}{refers}"
    own = words(owner)
    rest = w[len(own) :] if w[: len(own)] == own and len(w) > len(own) else w
    return f"The {who}'s {' '.join(rest)}"


def _singular_word(word: str) -> str:
    if len(word) > 3 and word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes", "zzes", "tuses")):
        return word[:-2]
    if word.endswith(("ss", "us", "is")) or not word.endswith("s") or len(word) <= 2:
        return word
    return word[:-1]


def _plural_word(word: str) -> str:
    if len(word) > 1 and word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    return word + "s"


@functools.lru_cache(maxsize=4096)
def singular(name: str) -> str:
    """The singular of a snake_case name, inflecting the last word only."""
    head, _, last = name.rpartition("_")
    return f"{head}_{_singular_word(last)}" if head else _singular_word(last)


@functools.lru_cache(maxsize=4096)
def plural(name: str) -> str:
    """The plural of a snake_case name; a name that already reads as plural is kept."""
    head, _, last = name.rpartition("_")
    if _singular_word(last) != last:
        return name
    return f"{head}_{_plural_word(last)}" if head else _plural_word(last)


def param_name(column: str) -> str:
    """A column's parameter name: the column itself when it is a plain ASCII identifier."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", column):
        return column
    out = re.sub(r"[^A-Za-z0-9_]+", "_", column).strip("_") or "value"
    return f"p_{out}" if out[0].isdigit() else out


class Names:
    """Hands out names that are unique within one scope (a tool's parameters, an environment's tools)."""

    def __init__(self, taken: set[str] | None = None) -> None:
        self.taken: set[str] = set(taken or ())

    def claim(self, wanted: str) -> str:
        name, n = wanted, 2
        while name in self.taken:
            name, n = f"{wanted}_{n}", n + 1
        self.taken.add(name)
        return name


# -- the database as derive sees it ----------------------------------------------------

#: A text column with at most this many distinct values (and twice as many rows) is an enum.
MAX_ENUM = 8

_TYPEOF = ("integer", "real", "text", "blob", "null")
_JSON_OF = {"integer": "integer", "real": "number", "text": "string"}
# Words that mark a column as a name or free text: never an enum, however few its values.
_FREE_TEXT = frozenset(
    "name email mail phone fax address street city country zip postal title description desc note notes "
    "comment comments url uri text body message summary content password username login company".split()
)
_DATE_WORDS = frozenset({"date", "at", "on", "time", "timestamp", "datetime"})
_NOT_AMOUNTS = _DATE_WORDS | {"year", "month", "day", "hour", "number", "no", "code", "zip", "version", "rank"}
_ISO = (
    ("date-time", re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}")),
    ("date", re.compile(r"\d{4}-\d{2}-\d{2}$")),
    ("time", re.compile(r"\d{2}:\d{2}(:\d{2})?$")),
)
_LITERALS = re.compile(r"\s*'(?:[^']|'')*'\s*(?:,\s*'(?:[^']|'')*'\s*)*")


@dataclass(slots=True, eq=False)
class Column:
    """One column: what SQLite declares, what the data shows, and what derive makes of it."""

    name: str
    declared: str
    notnull: bool
    default: str | None
    pk: int  # position in the primary key, 0 when not part of it
    seen: frozenset[str]  # the typeof() of the values in the table
    type: str = "string"  # JSON type of an argument: integer, number, string or boolean
    kind: str = "text"  # id, enum, bool, number, date, text, or hidden (blobs: not exposed)
    fmt: str | None = None
    enum: list[str] | None = None
    fk: tuple[str, str] | None = None  # (parent table, parent column)

    @property
    def param(self) -> str:
        return param_name(self.name)

    @property
    def result_types(self) -> list[str]:
        """JSON types of this column's values in a result: booleans come back as 0/1."""
        found = {"integer" if self.type == "boolean" else self.type}
        found |= {_JSON_OF[x] for x in self.seen if x in _JSON_OF}
        if "number" in found:
            found.discard("integer")
        types: list[str] = [x for x in ("integer", "number", "string") if x in found]
        return [*types, "null"] if "null" in self.seen or not (self.notnull or self.pk) else types

    @property
    def summable(self) -> bool:
        """A number worth totalling: not a timestamp, a year or a code that happens to be numeric."""
        return self.kind == "number" and not set(words(self.name)[-1:]) & _NOT_AMOUNTS

    def schema(self, description: str, *, nullable: bool = False) -> dict[str, Any]:
        """The JSON Schema of an argument holding a value of this column."""
        out: dict[str, Any] = {"type": [self.type, "null"] if nullable else self.type, "description": description}
        if self.fmt:
            out["format"] = self.fmt
        if self.enum:
            out["enum"] = [*self.enum, None] if nullable else list(self.enum)
        return out


@dataclass(frozen=True, slots=True)
class Reference:
    """A foreign key that points to a table: the referring table, its columns, its ON DELETE action."""

    child: str
    columns: tuple[str, ...]
    on_delete: str  # as PRAGMA foreign_key_list spells it: NO ACTION, RESTRICT, CASCADE, SET NULL, SET DEFAULT


@dataclass(slots=True, eq=False)
class Table:
    """One table, its columns in declaration order, and its singular and plural names."""

    name: str
    sql: str
    columns: list[Column]
    rows: int
    rowid_alias: Column | None
    referred_by: list[Reference] = field(default_factory=list)  # this table's own keys included
    s: str = field(init=False)
    p: str = field(init=False)

    def __post_init__(self) -> None:
        self.s, self.p = singular(snake(self.name)), plural(snake(self.name))

    @property
    def s_human(self) -> str:
        return humanize(self.s)

    @property
    def p_human(self) -> str:
        return humanize(self.p)

    @property
    def visible(self) -> list[Column]:
        return [c for c in self.columns if c.kind != "hidden"]

    @property
    def pk(self) -> list[Column]:
        key = sorted((c for c in self.columns if c.pk), key=lambda c: c.pk)
        return [] if any(c.kind == "hidden" for c in key) else key

    @property
    def select_list(self) -> str:
        return ", ".join(quote_ident(c.name) for c in self.visible)

    def describe(self, c: Column) -> str:
        return describe(c.name, owner=self.s, kind=c.kind, fmt=c.fmt, fk=c.fk)

    def row_schema(self) -> dict[str, Any]:
        """The JSON Schema of one row as the tools return it."""
        props: dict[str, Any] = {}
        for c in self.visible:
            types = c.result_types
            note = " (1 for yes, 0 for no)" if c.kind == "bool" else ""
            props[c.name] = {"type": types[0] if len(types) == 1 else types, "description": self.describe(c) + note}
        return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def read_tables(conn: sqlite3.Connection) -> list[Table]:
    """Every table of ``conn``'s main database but SQLite's own and virtual tables (and theirs)."""
    master = conn.execute(
        "SELECT name, COALESCE(sql, '') FROM sqlite_master WHERE type = 'table' ORDER BY name"
    ).fetchall()
    virtual = [n for n, sql in master if re.match(r"\s*CREATE\s+VIRTUAL", sql, re.IGNORECASE)]
    tables = [
        _read_table(conn, name, sql)
        for name, sql in master
        if not name.startswith("sqlite_") and not any(name == v or name.startswith(v + "_") for v in virtual)
    ]
    by_lower = {t.name.lower(): t for t in tables}
    for t in tables:
        _link(conn, t, by_lower)
    for t in tables:
        for c in t.columns:
            _classify(conn, t, c)
    return tables


def _read_table(conn: sqlite3.Connection, name: str, sql: str) -> Table:
    info = conn.execute(f"PRAGMA table_info({quote_ident(name)})").fetchall()
    # One scan: per column, a bit set of the storage classes its values have.
    bits = [
        " + ".join(f"{1 << i} * MAX(typeof({quote_ident(r[1])}) = '{ty}')" for i, ty in enumerate(_TYPEOF))
        for r in info
    ]
    stats = conn.execute(f"SELECT COUNT(*), {', '.join(bits)} FROM {quote_ident(name)}").fetchone()
    columns = [
        Column(
            name=r[1],
            declared=r[2] or "",
            notnull=bool(r[3]),
            default=r[4],
            pk=r[5],
            seen=frozenset(ty for i, ty in enumerate(_TYPEOF) if (b or 0) >> i & 1),
        )
        for r, b in zip(info, stats[1:], strict=True)
    ]
    key = [c for c in columns if c.pk]
    without_rowid = re.search(r"\bWITHOUT\s+ROWID\b", sql[sql.rfind(")") :], re.IGNORECASE)
    alias = key[0] if len(key) == 1 and key[0].declared.upper() == "INTEGER" and not without_rowid else None
    return Table(name, sql, columns, stats[0], alias)


def _link(conn: sqlite3.Connection, t: Table, by_lower: dict[str, Table]) -> None:
    keys: dict[int, list[Any]] = {}
    for row in conn.execute(f"PRAGMA foreign_key_list({quote_ident(t.name)})"):
        keys.setdefault(row[0], []).append(row)
    for rows in keys.values():
        parent = by_lower.get(str(rows[0][2]).lower())
        if parent is not None:
            columns = tuple(str(r[3]) for r in sorted(rows, key=lambda r: r[1]))
            parent.referred_by.append(Reference(t.name, columns, str(rows[0][6]).upper()))
        if len(rows) != 1:  # composite foreign keys get no list tool
            continue
        col = next((c for c in t.columns if c.name.lower() == str(rows[0][3]).lower()), None)
        to = rows[0][4]
        if parent is not None and to is None and len(parent.pk) == 1:
            to = parent.pk[0].name
        if parent is not None and col is not None and to is not None:
            col.fk = (parent.name, str(to))


def _affinity(declared: str) -> str | None:
    """SQLite's affinity rules, plus BOOL and DATE/TIME; None when nothing is declared."""
    u = declared.upper()
    if "BOOL" in u:
        return "boolean"
    if "INT" in u:
        return "integer"
    if "DATE" in u or "TIME" in u:
        return "date"
    if any(k in u for k in ("CHAR", "CLOB", "TEXT")):
        return "string"
    if "BLOB" in u:
        return "blob"
    return "number" if u else None


def _classify(conn: sqlite3.Connection, t: Table, c: Column) -> None:
    aff = _affinity(c.declared)
    if "blob" in c.seen or aff == "blob":
        c.kind = "hidden"
        return
    if aff == "boolean":
        c.type, c.kind = "boolean", "bool"
        return
    if aff is None:
        aff = next((_JSON_OF[x] for x in ("text", "real", "integer") if x in c.seen), "string")
    w = words(c.name) or [""]
    if aff == "date" or (aff == "string" and (w[-1] in _DATE_WORDS or c.name.lower().endswith(("date", "time")))):
        c.fmt = _date_format(conn, t, c)
        if c.fmt:
            c.type, c.kind = "string", "date"
            return
        aff = "number" if aff == "date" and c.seen - {"null", "text"} else "string"
    c.type = aff
    if c.pk or c.fk or is_id_like(c.name):
        c.kind = "id"
    elif aff != "string":
        c.kind = "number"
    else:
        c.enum = _checked_values(t.sql, c.name) or _few_values(conn, t, c)
        c.kind = "enum" if c.enum else "text"


def _date_format(conn: sqlite3.Connection, t: Table, c: Column) -> str | None:
    q = quote_ident(c.name)
    sample = conn.execute(f"SELECT {q} FROM {quote_ident(t.name)} WHERE typeof({q}) = 'text' LIMIT 1").fetchone()
    if sample is not None:
        return next((fmt for fmt, pattern in _ISO if pattern.match(sample[0])), None)
    if c.seen - {"null"}:
        return None  # numbers only: epoch seconds or the like, not ISO text
    timed = "TIME" in c.declared.upper() or (words(c.name) or [""])[-1] in {"at", "time", "timestamp"}
    return "date-time" if timed else "date"


def _checked_values(sql: str, column: str) -> list[str] | None:
    """The values of a ``CHECK (column IN ('a', 'b'))`` constraint, if the table has one."""
    pattern = rf"CHECK\s*\(\s*[\"`\[]?{re.escape(column)}[\"`\]]?\s+IN\s*\(([^)]*)\)"
    m = re.search(pattern, sql, re.IGNORECASE)
    if m is None or not _LITERALS.fullmatch(m.group(1)):
        return None
    return [v.replace("''", "'") for v in re.findall(r"'((?:[^']|'')*)'", m.group(1))]


def _few_values(conn: sqlite3.Connection, t: Table, c: Column) -> list[str] | None:
    if c.seen - {"text", "null"} or set(words(c.name)) & _FREE_TEXT:
        return None
    q = quote_ident(c.name)
    values = [
        r[0]
        for r in conn.execute(
            f"SELECT {q} FROM {quote_ident(t.name)} WHERE {q} IS NOT NULL GROUP BY {q} LIMIT ?", (MAX_ENUM + 1,)
        )
    ]
    if 2 <= len(values) <= MAX_ENUM and t.rows >= 2 * len(values) and max(map(len, values)) <= 40:
        return sorted(values)
    return None
