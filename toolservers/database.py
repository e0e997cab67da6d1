"""Per-dialogue SQLite databases: private copies, guarded by an authorizer.

A ``Database`` owns one connection in autocommit mode; the executor opens and closes
transactions itself. The authorizer is installed once and consults the database's
current ``effect``: reads may only read, writes may also insert, update and delete, and
nothing may attach files, load extensions, change pragmas or alter the schema.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from schemas import DatabaseSpec, Effect
from schemas.errors import DatabaseFileError

__all__ = ["SQLITE_HEADER", "Database", "check_sqlite_file", "open_database"]

SQLITE_HEADER = b"SQLite format 3\x00"

_READ_ACTIONS = frozenset(
    {
        sqlite3.SQLITE_SELECT,
        sqlite3.SQLITE_READ,
        sqlite3.SQLITE_FUNCTION,
        sqlite3.SQLITE_TRANSACTION,
        sqlite3.SQLITE_SAVEPOINT,
        sqlite3.SQLITE_RECURSIVE,
    }
)
_WRITE_ACTIONS = _READ_ACTIONS | {sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE}
_READ_PRAGMAS = frozenset({"table_info", "table_xinfo", "foreign_key_list", "index_list", "index_info"})
_DENIED_FUNCTIONS = frozenset({"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer"})


def check_sqlite_file(path: Path) -> None:
    """Raise DatabaseFileError unless ``path`` is a non-empty SQLite database file."""
    if not path.exists():
        raise DatabaseFileError(str(path), "no such file")
    if not path.is_file():
        raise DatabaseFileError(str(path), "not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise DatabaseFileError(str(path), "the file is empty; expected an SQLite database")
    with path.open("rb") as fh:
        header = fh.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise DatabaseFileError(str(path), "not an SQLite database (the file does not start with the SQLite header)")


class Database:
    """One connection, its authorizer, and the effect currently allowed.

    ``denied`` records what the authorizer refused last, so a refusal can be told apart
    from any other SQLite error without reading message text.
    """

    def __init__(self, conn: sqlite3.Connection, *, label: str = ":memory:") -> None:
        self.conn = conn
        self.label = label
        self.effect: Effect = Effect.READ
        self.denied: str | None = None
        conn.isolation_level = None
        conn.execute("PRAGMA foreign_keys = ON")
        conn.set_authorizer(self._authorize)

    def _authorize(self, action: int, arg1: str | None, arg2: str | None, _db: str | None, _trig: str | None) -> int:
        if action == sqlite3.SQLITE_FUNCTION:
            if arg2 is not None and arg2.lower() in _DENIED_FUNCTIONS:
                return self._deny(f"function {arg2}()")
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_PRAGMA:
            # Only the schema-reading pragmas pass (their argument is a table name); any
            # other pragma could change a setting.
            if arg1 is not None and arg1.lower() in _READ_PRAGMAS:
                return sqlite3.SQLITE_OK
            return self._deny(f"PRAGMA {arg1}")
        allowed = _WRITE_ACTIONS if self.effect is Effect.WRITE else _READ_ACTIONS
        if action in allowed:
            return sqlite3.SQLITE_OK
        return self._deny(_ACTION_NAMES.get(action, f"action {action}") + (f" on {arg1}" if arg1 else ""))

    def _deny(self, what: str) -> int:
        self.denied = what
        return sqlite3.SQLITE_DENY

    @contextmanager
    def allowing(self, effect: Effect) -> Iterator[None]:
        """Run the body with ``effect`` allowed; ``denied`` is reset on entry."""
        previous = self.effect
        self.effect = effect
        self.denied = None
        try:
            yield
        finally:
            self.effect = previous

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a read-only query (verification, grounding) under the authorizer."""
        with self.allowing(Effect.READ):
            return list(self.conn.execute(sql, params or {}))

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, sorted: for comparing states in tests and checks."""
        tables = [r[0] for r in self.query("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        out: dict[str, list[tuple[Any, ...]]] = {}
        for t in tables:
            if t.startswith("sqlite_"):
                continue
            rows = self.query(f'SELECT * FROM "{t}"')
            out[t] = sorted(rows, key=repr)
        return out

    def close(self) -> None:
        self.conn.close()


_ACTION_NAMES = {
    sqlite3.SQLITE_INSERT: "INSERT",
    sqlite3.SQLITE_UPDATE: "UPDATE",
    sqlite3.SQLITE_DELETE: "DELETE",
    sqlite3.SQLITE_ATTACH: "ATTACH",
    sqlite3.SQLITE_DETACH: "DETACH",
    sqlite3.SQLITE_CREATE_TABLE: "CREATE TABLE",
    sqlite3.SQLITE_CREATE_INDEX: "CREATE INDEX",
    sqlite3.SQLITE_CREATE_TRIGGER: "CREATE TRIGGER",
    sqlite3.SQLITE_CREATE_VIEW: "CREATE VIEW",
    sqlite3.SQLITE_CREATE_TEMP_TABLE: "CREATE TEMP TABLE",
    sqlite3.SQLITE_DROP_TABLE: "DROP TABLE",
    sqlite3.SQLITE_DROP_INDEX: "DROP INDEX",
    sqlite3.SQLITE_DROP_TRIGGER: "DROP TRIGGER",
    sqlite3.SQLITE_DROP_VIEW: "DROP VIEW",
    sqlite3.SQLITE_ALTER_TABLE: "ALTER TABLE",
    sqlite3.SQLITE_REINDEX: "REINDEX",
    sqlite3.SQLITE_ANALYZE: "ANALYZE",
}


def open_database(
    spec: DatabaseSpec,
    *,
    base_dir: Path | None = None,
    in_place: bool = False,
    override_path: Path | None = None,
) -> Database:
    """Open a private copy of the database ``spec`` describes.

    With a DDL spec the copy is built in memory from the DDL and seed rows. With a file
    (``spec.path``, or ``override_path``) the file is checked, then copied into memory
    through the SQLite backup API, so the source is never modified, unless ``in_place``.

    Raises DatabaseFileError for a missing, empty or non-SQLite file, and for DDL or
    seed rows SQLite refuses.
    """
    path = override_path
    if path is None and spec.path is not None:
        path = Path(spec.path)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
    if path is not None:
        check_sqlite_file(path)
        if in_place:
            conn = sqlite3.connect(str(path), check_same_thread=False)
            return Database(conn, label=str(path))
        src = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            conn = sqlite3.connect(":memory:", check_same_thread=False)
            try:
                src.backup(conn)
                # A truncated or damaged file can copy cleanly and fail on first use: check now.
                problems = [r[0] for r in conn.execute("PRAGMA quick_check")]
            except sqlite3.DatabaseError as exc:
                conn.close()
                raise DatabaseFileError(str(path), f"cannot be read as SQLite: {exc}") from exc
            if problems != ["ok"]:
                conn.close()
                raise DatabaseFileError(str(path), f"the database is damaged: {problems[0]}")
        finally:
            src.close()
        return Database(conn, label=f"copy of {path}")
    template = _template(spec)
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    template.backup(conn)
    return Database(conn, label=":memory:")


# Built databases of DDL specs, copied with the backup API for each new dialogue: far
# cheaper than running the DDL and inserting the seed rows again. Keyed by the spec's
# identity; the entry keeps the spec alive so the id cannot be reused while cached.
_TEMPLATES: OrderedDict[int, tuple[DatabaseSpec, sqlite3.Connection]] = OrderedDict()
_TEMPLATE_LIMIT = 32


def _template(spec: DatabaseSpec) -> sqlite3.Connection:
    hit = _TEMPLATES.get(id(spec))
    if hit is not None and hit[0] is spec:
        _TEMPLATES.move_to_end(id(spec))
        return hit[1]
    conn = _build(spec)
    _TEMPLATES[id(spec)] = (spec, conn)
    while len(_TEMPLATES) > _TEMPLATE_LIMIT:
        _, (_, old) = _TEMPLATES.popitem(last=False)
        old.close()
    return conn


def _build(spec: DatabaseSpec) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    try:
        try:
            conn.executescript(spec.ddl or "")
        except sqlite3.Error as exc:
            raise DatabaseFileError("database.ddl", f"SQLite refused the DDL: {exc}") from exc
        for table, rows in spec.seed.items():
            for i, row in enumerate(rows):
                cols = ", ".join(f'"{c}"' for c in row)
                marks = ", ".join("?" for _ in row)
                try:
                    conn.execute(f'INSERT INTO "{table}" ({cols}) VALUES ({marks})', list(row.values()))
                except sqlite3.Error as exc:
                    raise DatabaseFileError("database.seed", f"{table}[{i}]: {exc}") from exc
        conn.commit()
    except BaseException:
        conn.close()
        raise
    return conn
