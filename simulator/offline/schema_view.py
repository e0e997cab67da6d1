"""What the offline brains need to know about an environment: tables, keys, and its tools by role."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from schemas import Environment, ToolSpec
from toolservers.database import Database, file_stamp, source_file
from toolservers.sql import quote_ident

__all__ = ["Column", "Schema", "Table", "ToolIndex", "read_schema", "shared_schema"]

_KEY_HINTS = ("email", "reference", "ref", "code", "number", "phone", "username", "name", "title")


@dataclass(slots=True)
class Column:
    name: str
    type: str  # SQLite declared type, upper case
    notnull: bool
    pk: bool
    default: Any

    @property
    def numeric(self) -> bool:
        return any(t in self.type for t in ("INT", "REAL", "FLOA", "DOUB", "NUM", "DEC"))

    @property
    def is_date(self) -> bool:
        n = self.name.lower()
        return "DATE" in self.type or "TIME" in self.type or n.endswith(("_date", "_on", "_at", "date"))


@dataclass(slots=True)
class Table:
    name: str
    columns: dict[str, Column]
    pk: str | None
    rows: int
    #: Foreign keys of this table: column -> (parent table, parent column).
    fks: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: Columns with few distinct values, and those values.
    enums: dict[str, list[Any]] = field(default_factory=dict)
    #: A unique, human-known column to find a row by (email, reference...), if any.
    key: str | None = None

    def informative(self) -> list[str]:
        """Columns worth reporting to a user: not keys or ids."""
        out = []
        for c in self.columns.values():
            if c.pk or c.name in self.fks or c.name == self.key or c.name.endswith("_id"):
                continue
            out.append(c.name)
        return out


@dataclass(slots=True)
class ToolIndex:
    """The environment's tools by (category, table)."""

    by_role: dict[tuple[str, str], list[ToolSpec]] = field(default_factory=dict)

    def get(self, category: str, table: str) -> ToolSpec | None:
        tools = self.by_role.get((category, table))
        return tools[0] if tools else None

    def all(self, category: str, table: str) -> list[ToolSpec]:
        return list(self.by_role.get((category, table), []))


@dataclass(slots=True)
class Schema:
    tables: dict[str, Table]
    tools: ToolIndex
    #: What planners derive from the database this schema was read from, kept with it
    #: (a shared schema shares it): name -> value, e.g. the derived policy.
    memo: dict[str, Any] = field(default_factory=dict)

    def children(self, parent: str) -> list[tuple[str, str]]:
        """(child table, fk column) pairs pointing at ``parent``."""
        return [(t.name, col) for t in self.tables.values() for col, (p, _) in t.fks.items() if p == parent]


def read_schema(environment: Environment, db: Database) -> Schema:
    """Introspect ``db`` (tables, keys, low-cardinality columns) and index the tools."""
    names = [
        r[0]
        for r in db.query(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]
    tables: dict[str, Table] = {}
    for name in names:
        info = db.query(f"PRAGMA table_info({quote_ident(name)})")
        columns = {
            r[1]: Column(name=r[1], type=(r[2] or "").upper(), notnull=bool(r[3]), pk=bool(r[5]), default=r[4])
            for r in info
        }
        pks = [c.name for c in columns.values() if c.pk]
        rows = int(db.query(f"SELECT COUNT(*) FROM {quote_ident(name)}")[0][0])
        table = Table(name=name, columns=columns, pk=pks[0] if len(pks) == 1 else None, rows=rows)
        for r in db.query(f"PRAGMA foreign_key_list({quote_ident(name)})"):
            table.fks[r[3]] = (r[2], r[4] or "")
        for col in columns.values():
            if col.pk or col.numeric or col.name in table.fks:
                continue
            c = quote_ident(col.name)
            distinct = db.query(f"SELECT DISTINCT {c} FROM {quote_ident(name)} WHERE {c} IS NOT NULL LIMIT 9")
            if 1 < len(distinct) <= 8 and rows >= 2 * len(distinct):
                table.enums[col.name] = sorted(r[0] for r in distinct)
        table.key = _natural_key(db, table)
        tables[name] = table
    index = ToolIndex()
    for tool in environment.tools:
        if tool.table is not None:
            index.by_role.setdefault((tool.category, tool.table), []).append(tool)
    return Schema(tables=tables, tools=index)


# (id of the environment, its database file's stamp) -> (the environment, kept alive so
# the id stays its own, and the schema read from a fresh copy of its database).
_SHARED: OrderedDict[tuple[int, tuple[int, int, int] | None], tuple[Environment, Schema]] = OrderedDict()
_SHARED_LOCK = threading.Lock()
_SHARED_LIMIT = 64


def shared_schema(environment: Environment, db: Database) -> Schema:
    """``read_schema`` for ``db``, a fresh, unchanged copy of the environment's database.

    Every scenario of a run plans on a fresh copy of the same database, so what is read
    before planning (tables, keys, low-cardinality columns, row counts), and what
    planners derive and keep in ``memo``, is the same each time: it is read once per
    environment and shared, read-only. A database file is read again once it changed
    (its modification time, size or inode).
    """
    key = (id(environment), file_stamp(source_file(environment.database)))
    with _SHARED_LOCK:
        hit = _SHARED.get(key)
        if hit is not None and hit[0] is environment:
            _SHARED.move_to_end(key)
            return hit[1]
    schema = read_schema(environment, db)
    with _SHARED_LOCK:
        _SHARED[key] = (environment, schema)
        while len(_SHARED) > _SHARED_LIMIT:
            _SHARED.popitem(last=False)
    return schema


def _natural_key(db: Database, table: Table) -> str | None:
    if table.rows == 0:
        return None
    candidates = []
    for col in table.columns.values():
        if col.pk or col.numeric or col.name in table.fks or col.name in table.enums or col.is_date:
            continue
        hint = next((i for i, h in enumerate(_KEY_HINTS) if h in col.name.lower()), None)
        if hint is None:
            continue
        c = quote_ident(col.name)
        distinct, total = db.query(f"SELECT COUNT(DISTINCT {c}), COUNT({c}) FROM {quote_ident(table.name)}")[0]
        if distinct == total == table.rows:
            candidates.append((hint, col.name))
    return min(candidates)[1] if candidates else None
