"""Reusing a closed dialogue's connection for the next copy of the same built database.

A fresh copy of a database costs little to make (the backup API copies its pages); what
costs is that every statement run on it is prepared again: SQLite parses and plans a tool's
statement, and the authorizer is asked about every column, the first time a connection
runs it. On the small databases of the built-in domains, preparing was most of a tool
call's time. So a connection whose dialogue is done goes back to its database's pool, and
the next copy of that database is that connection with its rows put back as they were:
every table emptied and refilled from the rows of the built database, in one transaction.
Its prepared statements stay valid (the schema is untouched) and its authorizer and
progress handler stay installed (installing an authorizer would discard them).

Only what can be put back exactly is reused: a database with triggers (refilling a table
would fire them) or virtual tables, or too many rows to refill quickly, is copied fresh
each time. A connection whose settings or callbacks anyone changed, whose schema changed,
or that is inside a transaction, is closed instead of reused; so is one whose refill failed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from toolservers.sql import quote_ident

__all__ = ["MAX_ROWS", "Connection", "Refill", "Route"]

#: A database with more rows than this is copied fresh for each dialogue: refilling it
#: would cost more than preparing the statements again.
MAX_ROWS = 20_000

# The pool's own statements run unguarded (no one holds the connection): their text is
# its own, so no guarded statement of the same text can reuse what they prepared.
_TAG = "\n/* dialogsim: pool */"
_SETTINGS = frozenset({"row_factory", "text_factory", "isolation_level"})


class Connection(sqlite3.Connection):
    """A connection that knows whether anyone changed its callbacks or settings since it was set up.

    Such a connection is never reused: what was changed would reach the next dialogue.
    The database sets it up through ``sqlite3.Connection``'s own methods, which do not mark it.
    """

    tainted = False

    def _taint(self) -> None:
        object.__setattr__(self, "tainted", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SETTINGS:
            self._taint()
        super().__setattr__(name, value)

    def set_authorizer(self, *args: Any, **kwargs: Any) -> None:
        self._taint()
        super().set_authorizer(*args, **kwargs)

    def set_progress_handler(self, *args: Any, **kwargs: Any) -> None:
        self._taint()
        super().set_progress_handler(*args, **kwargs)

    def set_trace_callback(self, *args: Any, **kwargs: Any) -> None:
        self._taint()
        super().set_trace_callback(*args, **kwargs)

    def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._taint()
        super().create_function(*args, **kwargs)

    def create_aggregate(self, *args: Any, **kwargs: Any) -> None:
        self._taint()
        super().create_aggregate(*args, **kwargs)

    def create_window_function(self, *args: Any, **kwargs: Any) -> None:
        self._taint()
        super().create_window_function(*args, **kwargs)

    def create_collation(self, *args: Any, **kwargs: Any) -> None:
        self._taint()
        super().create_collation(*args, **kwargs)

    def enable_load_extension(self, *args: Any, **kwargs: Any) -> None:
        self._taint()
        super().enable_load_extension(*args, **kwargs)

    def setlimit(self, *args: Any, **kwargs: Any) -> int:
        self._taint()
        return super().setlimit(*args, **kwargs)

    def deserialize(self, *args: Any, **kwargs: Any) -> None:
        self._taint()
        super().deserialize(*args, **kwargs)


class Route:
    """Where a connection's authorizer and progress handler go: the database that holds it now.

    Installed once per connection; a reused connection is routed to its new holder. While
    no one holds it (in the pool, being refilled), everything is allowed and nothing is
    interrupted: only the pool's own statements run then.
    """

    __slots__ = ("authorize_with", "progress_with")

    def __init__(self) -> None:
        self.authorize_with: Callable[[int, str | None, str | None, str | None, str | None], int] | None = None
        self.progress_with: Callable[[], int] | None = None

    def authorize(self, action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None) -> int:
        check = self.authorize_with
        return sqlite3.SQLITE_OK if check is None else check(action, arg1, arg2, db, trigger)

    def progress(self) -> int:
        check = self.progress_with
        return 0 if check is None else check()


def state(conn: sqlite3.Connection) -> tuple[int, ...]:
    """What must be the same when a connection comes back as when it was handed out: the
    schema cookie of ``main``, foreign-key enforcement, and the databases it has open (``temp``
    is among them once anything used it: asking for its schema would open it, 90 KiB a
    connection, so it is not asked)."""
    return (
        int(conn.execute("PRAGMA main.schema_version" + _TAG).fetchone()[0]),
        int(conn.execute("PRAGMA foreign_keys" + _TAG).fetchone()[0]),
        len(conn.execute("PRAGMA database_list" + _TAG).fetchall()),
    )


class Refill:
    """How to put a copy's rows back as the built database has them, changing only what differs.

    Every table is read (in rowid order) and compared with the built database's rows; a
    table that differs is mended row by row: rows the dialogue added are deleted (children
    first), rows it deleted are inserted again and rows it changed are set back (parents
    first), by rowid. Only rowid tables are mended (a ``WITHOUT ROWID`` table makes the
    database one that is copied fresh); ``sqlite_sequence`` is mended like any table.
    """

    def __init__(self, tables: list[_Table], reach: dict[str, frozenset[str]]) -> None:
        self.tables = tables
        # Per table, the tables a write to it can change: itself, and those foreign-key
        # actions (ON DELETE/UPDATE CASCADE, SET NULL, SET DEFAULT) reach from it.
        self.reach = reach

    @classmethod
    def of(cls, template: sqlite3.Connection) -> Refill | None:
        """The refill for copies of ``template``, or None when copies of it cannot be mended exactly."""
        try:
            return cls._of(template)
        except sqlite3.Error:
            return None

    @classmethod
    def _of(cls, template: sqlite3.Connection) -> Refill | None:
        kinds = dict(
            template.execute(
                "SELECT name, CASE WHEN type = 'trigger' OR sql LIKE 'CREATE VIRTUAL%' THEN 'no' ELSE type END"
                " FROM sqlite_master"
            ).fetchall()
        )
        if "no" in kinds.values():
            return None
        if any(wr for (wr,) in template.execute("SELECT wr FROM pragma_table_list WHERE schema = 'main'")):
            return None
        names = [name for name, kind in kinds.items() if kind == "table" and not name.startswith("sqlite_")]
        order = _parents_first(template, names)
        if "sqlite_sequence" in kinds:
            order.append("sqlite_sequence")
        tables = []
        total = 0
        for name in order:
            table = _Table.of(template, name)
            if table is None:
                return None
            total += len(table.rows)
            if total > MAX_ROWS:
                return None
            tables.append(table)
        return cls(tables, _reach(template, names))

    def apply(self, conn: sqlite3.Connection, written: set[str] | None = None) -> None:
        """Mend the rows, in one transaction; raises sqlite3.Error (and changes nothing) when it cannot.

        ``written``: the tables the copy's writes named (None or empty: not known); only
        they, the tables foreign-key actions reach from them and ``sqlite_sequence`` are read.
        """
        look: set[str] | None = None
        if written:
            look = {"sqlite_sequence"}
            for name in written:
                look |= self.reach.get(name, {name})
        changed = []
        for table in self.tables:
            if look is not None and table.name not in look:
                continue
            rows = conn.execute(table.select).fetchall()
            if rows != table.rows:
                changed.append((table, table.mends(rows)))
        if not changed:
            return
        conn.execute("BEGIN" + _TAG)
        try:
            for table, (extra, _missing, _differ) in reversed(changed):
                if extra:
                    conn.executemany(table.delete, [(rowid,) for rowid in extra])
            for table, (_extra, missing, differ) in changed:
                if missing:
                    conn.executemany(table.insert, [table.inserted(row) for row in missing])
                if differ:
                    conn.executemany(table.update, [table.updated(row) for row in differ])
            conn.execute("COMMIT" + _TAG)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK" + _TAG)
            raise


_Row = tuple[Any, ...]


class _Table:
    """One table's rows in the built database, and the statements that mend a copy's."""

    def __init__(self, name: str, columns: list[str], typed: list[str], alias: bool) -> None:
        q = quote_ident(name)
        self.name = name
        self.width = len(columns)
        # The rowid, the columns, then the storage class of each column that keeps any value
        # as given (no affinity): 1 and 1.0 compare equal in Python but are not the same value.
        shown = ", ".join([*columns, *(f"typeof({c})" for c in typed)])
        self.select = f"SELECT rowid, {shown} FROM {q} ORDER BY rowid" + _TAG
        self.rows: list[_Row] = []
        self.by_rowid: dict[Any, _Row] = {}
        self.alias = alias  # a column is the rowid (INTEGER PRIMARY KEY): inserted as that column
        targets = columns if alias else ["rowid", *columns]
        marks = ", ".join("?" for _ in targets)
        self.insert = f"INSERT INTO {q} ({', '.join(targets)}) VALUES ({marks})" + _TAG
        self.update = f"UPDATE {q} SET {', '.join(f'{c} = ?' for c in columns)} WHERE rowid = ?" + _TAG
        self.delete = f"DELETE FROM {q} WHERE rowid = ?" + _TAG

    @classmethod
    def of(cls, conn: sqlite3.Connection, name: str) -> _Table | None:
        info = conn.execute("SELECT name, type, pk, hidden FROM pragma_table_xinfo(?)", (name,)).fetchall()
        if {str(col).lower() for col, *_ in info} & {"rowid", "_rowid_", "oid"}:
            return None  # "rowid" would name a column
        columns = [quote_ident(col) for col, _kind, _pk, hidden in info if not hidden]
        typed = [quote_ident(col) for col, kind, _pk, hidden in info if not hidden and _keeps_any(str(kind))]
        keys = [str(kind).upper() for _col, kind, pk, _hidden in info if pk]
        table = cls(name, columns, typed, alias=keys == ["INTEGER"])
        table.rows = conn.execute(table.select).fetchall()
        table.by_rowid = {row[0]: row for row in table.rows}
        return table

    def mends(self, rows: list[_Row]) -> tuple[list[Any], list[_Row], list[_Row]]:
        """(rowids to delete, built rows to insert, built rows to set back) for a copy holding ``rows``."""
        now = {row[0]: row for row in rows}
        extra = [rowid for rowid in now if rowid not in self.by_rowid]
        missing = [row for rowid, row in self.by_rowid.items() if rowid not in now]
        differ = [row for rowid, row in self.by_rowid.items() if rowid in now and now[rowid] != row]
        return extra, missing, differ

    def inserted(self, row: _Row) -> _Row:
        return row[1 : 1 + self.width] if self.alias else row[: 1 + self.width]

    def updated(self, row: _Row) -> _Row:
        return (*row[1 : 1 + self.width], row[0])


def _keeps_any(declared: str) -> bool:
    """Whether a column of this declared type has no affinity (BLOB or no type): it keeps 1 and 1.0 apart."""
    kind = declared.upper()
    if any(word in kind for word in ("INT", "CHAR", "CLOB", "TEXT", "REAL", "FLOA", "DOUB")):
        return False
    return "BLOB" in kind or not kind.strip()


def _reach(conn: sqlite3.Connection, tables: list[str]) -> dict[str, frozenset[str]]:
    """Per table, itself and every table a foreign-key action reaches from it, transitively."""
    acting = ("CASCADE", "SET NULL", "SET DEFAULT")
    children: dict[str, set[str]] = {table: set() for table in tables}
    for child in tables:
        for parent, on_update, on_delete in conn.execute(
            'SELECT "table", on_update, on_delete FROM pragma_foreign_key_list(?)', (child,)
        ):
            if str(on_update).upper() in acting or str(on_delete).upper() in acting:
                children.setdefault(str(parent), set()).add(child)
    reach = {}
    for table in children:
        seen = {table}
        todo = [table]
        while todo:
            for child in children.get(todo.pop(), ()):
                if child not in seen:
                    seen.add(child)
                    todo.append(child)
        reach[table] = frozenset(seen)
    return reach


def _parents_first(conn: sqlite3.Connection, tables: list[str]) -> list[str]:
    """``tables`` ordered so that a table comes after the tables its foreign keys name (as far as
    the references allow: a cycle keeps the given order, and the refill fails if it must)."""
    parents = {
        table: {
            str(parent)
            for (parent,) in conn.execute('SELECT "table" FROM pragma_foreign_key_list(?)', (table,))
            if parent != table
        }
        for table in tables
    }
    done: list[str] = []
    placed: set[str] = set()
    visiting: set[str] = set()

    def place(table: str) -> None:
        if table in placed or table in visiting:
            return
        visiting.add(table)
        for parent in sorted(parents.get(table, ())):
            if parent in parents:
                place(parent)
        visiting.discard(table)
        placed.add(table)
        done.append(table)

    for table in tables:
        place(table)
    return done
