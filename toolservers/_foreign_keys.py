"""Say which foreign key a refused write broke: ``invoice.customer_id → customer.id: no customer 999``.

SQLite only says "FOREIGN KEY constraint failed". To name the relation, the failed
statement is run once more inside a savepoint with the foreign keys deferred, so it goes
through and leaves its violation behind; ``PRAGMA foreign_key_check`` then lists it (the
violations already in the file are listed before and left out), and the savepoint is
rolled back. Only on the error path, bounded by the call's deadline.

Whether the broken key is a missing parent (``no customer 999``) or rows left behind
(``2 invoice rows still refer to customer 1``) is told by the parent key: if it was
there before the statement ran, the statement removed it. That holds for a table whose
rows point to each other too (``tree.parent_id → tree.id``).
"""

from __future__ import annotations

import sqlite3
from typing import Any, NamedTuple

from toolservers._json import dumps
from toolservers.database import Database, Interruption
from toolservers.sql import quote_ident

__all__ = ["describe_violation"]

_PROBE = "dialogsim_fk_probe"


def describe_violation(db: Database, statement: str | None, params: dict[str, Any], table: str | None) -> str | None:
    """What the failed ``statement`` would break, or None when it cannot be told.

    ``statement`` None means the commit failed (a deferred foreign key): the violation is
    still there to be listed, and ``table`` (the table the tool writes) tells the side:
    rows of another table that still refer to one of ``table``'s. Run inside the call's
    own savepoint, before it is rolled back. Re-raises an interruption for the event loop's
    budget (the call then starts over in a worker thread); other errors give None.
    """
    conn = db.conn
    try:
        before = set(db.trusted("PRAGMA foreign_key_check").fetchall()) if statement is not None else set()
        db.trusted(f"SAVEPOINT {_PROBE}")
        try:
            db.trusted("PRAGMA defer_foreign_keys = ON")
            if statement is not None:
                conn.execute(statement, params)
            found = [row for row in db.trusted("PRAGMA foreign_key_check").fetchall() if row not in before]
            broken = _broken(db, found[0]) if found else None
        finally:
            if conn.in_transaction:
                db.trusted(f"ROLLBACK TO {_PROBE}")
                db.trusted(f"RELEASE {_PROBE}")
            db.trusted("PRAGMA defer_foreign_keys = OFF")
        if broken is None:
            return None
        # Rolled back to before the statement: a parent key found now is one it removed.
        if statement is not None and broken.values:
            left_behind = _exists(db, broken)
        else:  # a failed commit has no "before": the tool's own table is the parent
            left_behind = table is not None and broken.child != table and broken.parent == table
        return _describe(broken, found, left_behind)
    except sqlite3.Error:
        if db.interrupted_by is Interruption.BUDGET:
            raise
        return None


class _Broken(NamedTuple):
    """The first broken key: the child's columns and values, and the parent's key columns."""

    child: str
    fkid: int
    columns: list[str]
    parent: str
    targets: list[str]
    values: list[Any]


def _broken(db: Database, violation: tuple[Any, ...]) -> _Broken:
    child, rowid, parent, fkid = violation
    keys = [r for r in db.trusted(f"PRAGMA foreign_key_list({quote_ident(child)})").fetchall() if r[0] == fkid]
    keys.sort(key=lambda r: r[1])
    columns = [str(r[3]) for r in keys]
    targets = [r[4] for r in keys]
    if any(t is None for t in targets):  # REFERENCES parent: its primary key
        info = db.trusted(f"PRAGMA table_info({quote_ident(parent)})").fetchall()
        targets = [str(r[1]) for r in sorted((r for r in info if r[5]), key=lambda r: r[5])]
    values: list[Any] = []
    if rowid is not None:
        picked = ", ".join(quote_ident(c) for c in columns)
        row = db.trusted(f"SELECT {picked} FROM {quote_ident(child)} WHERE rowid = ?", (rowid,)).fetchone()
        values = list(row) if row is not None else []
    return _Broken(child, fkid, columns, parent, [str(t) for t in targets], values)


def _exists(db: Database, broken: _Broken) -> bool:
    where = " AND ".join(f"{quote_ident(t)} = ?" for t in broken.targets)
    sql = f"SELECT 1 FROM {quote_ident(broken.parent)} WHERE {where} LIMIT 1"
    return db.trusted(sql, tuple(broken.values)).fetchone() is not None


def _describe(broken: _Broken, found: list[tuple[Any, ...]], left_behind: bool) -> str:
    child, parent, values = broken.child, broken.parent, broken.values
    relation = f"{child}.{_names(broken.columns)} → {parent}.{_names(broken.targets)}"
    value = ""
    if values:
        value = dumps(values[0]) if len(values) == 1 else "(" + ", ".join(dumps(v) for v in values) + ")"
    if left_behind:
        same = sum(1 for r in found if r[0] == child and r[3] == broken.fkid)
        rows = "row still refers" if same == 1 else "rows still refer"
        return f"{relation}: {same} {child} {rows} to {parent} {value}".rstrip()
    return f"{relation}: no {parent} {value}".rstrip()


def _names(columns: list[str]) -> str:
    return columns[0] if len(columns) == 1 else "(" + ", ".join(columns) + ")"
