"""Say which foreign key a refused write broke: ``invoice.customer_id → customer.id: no customer 999``.

SQLite only says "FOREIGN KEY constraint failed". To name the relation, the failed
statement is run once more inside a savepoint with the foreign keys deferred, so it goes
through and leaves its violation behind; ``PRAGMA foreign_key_check`` then lists it (the
violations already in the file are listed before and left out), and the savepoint is
rolled back. Only on the error path, bounded by the call's deadline.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from toolservers._json import dumps
from toolservers.database import Database, Interruption
from toolservers.sql import quote_ident

__all__ = ["describe_violation"]

_PROBE = "dialogsim_fk_probe"


def describe_violation(db: Database, statement: str | None, params: dict[str, Any], table: str | None) -> str | None:
    """What the failed ``statement`` would break, or None when it cannot be told.

    ``statement`` None means the commit failed (a deferred foreign key): the violation is
    still there to be listed. ``table`` is the table the tool writes (a delete that
    orphans rows of another table is told from that side). Run inside the call's own
    savepoint, before it is rolled back. Re-raises an interruption for the event loop's
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
            return _describe(db, found, table) if found else None
        finally:
            if conn.in_transaction:
                db.trusted(f"ROLLBACK TO {_PROBE}")
                db.trusted(f"RELEASE {_PROBE}")
            db.trusted("PRAGMA defer_foreign_keys = OFF")
    except sqlite3.Error:
        if db.interrupted_by is Interruption.BUDGET:
            raise
        return None


def _describe(db: Database, found: list[tuple[Any, ...]], table: str | None) -> str:
    child, rowid, parent, fkid = found[0]
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
    relation = f"{child}.{_names(columns)} → {parent}.{_names(targets)}"
    value = ""
    if values:
        value = dumps(values[0]) if len(values) == 1 else "(" + ", ".join(dumps(v) for v in values) + ")"
    if table is not None and child != table and parent == table:
        same = sum(1 for r in found if r[0] == child and r[3] == fkid)
        rows = "row still refers" if same == 1 else "rows still refer"
        return f"{relation}: {same} {child} {rows} to {parent} {value}".rstrip()
    return f"{relation}: no {parent} {value}".rstrip()


def _names(columns: list[str]) -> str:
    return columns[0] if len(columns) == 1 else "(" + ", ".join(columns) + ")"
