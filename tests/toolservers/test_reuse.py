"""A closed copy's connection becomes the next copy of the same built database (toolservers._reuse).

What must hold: the next copy holds exactly the built database's rows whatever the last
dialogue wrote (by tool, by cascade, by a write no tool named), its statements stay
prepared, and a connection anyone changed is never handed on.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from schemas import DatabaseSpec, Effect
from simulator.domains import load_domain
from toolservers.database import Database, open_database
from toolservers.executor import ToolExecutor

DDL = """
CREATE TABLE owners (owner_id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE pets (
    pet_id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id INTEGER NOT NULL REFERENCES owners(owner_id) ON DELETE CASCADE,
    name TEXT, weight
);
CREATE TABLE notes (body TEXT, tag BLOB);
"""
SEED = {
    "owners": [{"owner_id": 1, "name": "Ada"}, {"owner_id": 2, "name": "Bo"}],
    "pets": [
        {"pet_id": 1, "owner_id": 1, "name": "Rex", "weight": 1.0},
        {"pet_id": 2, "owner_id": 2, "name": "Tom", "weight": 3},
    ],
    "notes": [{"body": "first", "tag": 1}, {"body": "second", "tag": None}],
}


def _spec(ddl: str = DDL) -> DatabaseSpec:
    return DatabaseSpec(ddl=ddl, seed=SEED)


def _state(db: Database) -> dict[str, Any]:
    """Every row with its rowid and the storage class of every value, and the AUTOINCREMENT counters."""
    out: dict[str, Any] = {}
    with db.allowing(Effect.READ):
        tables = [r[0] for r in db.trusted("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        for table in tables:
            rows = db.trusted(f'SELECT rowid, * FROM "{table}" ORDER BY rowid').fetchall()
            out[table] = [(row, [type(v).__name__ for v in row]) for row in rows]
    return out


def _scribble(db: Database) -> None:
    """Write to every table, in ways a tool could and one no tool names."""
    with db.allowing(Effect.WRITE):
        db.conn.execute("INSERT INTO owners (name) VALUES ('Cy')")
        db.conn.execute("INSERT INTO pets (owner_id, name, weight) VALUES (3, 'Kit', 2.0)")
        db.conn.execute("UPDATE pets SET weight = 1 WHERE pet_id = 1")  # 1.0 -> 1: equal in Python, not in SQLite
        db.conn.execute("DELETE FROM owners WHERE owner_id = 2")  # cascades to pet 2
        db.conn.execute("UPDATE notes SET tag = 1.0 WHERE body = 'first'")
        db.conn.execute("DELETE FROM notes WHERE body = 'second'")
        db.conn.execute("INSERT INTO notes (body) VALUES ('third')")


def test_the_next_copy_is_the_same_connection_with_every_row_as_built() -> None:
    spec = _spec()
    first = open_database(spec)
    built = _state(first)
    conn = first.conn
    _scribble(first)
    assert _state(first) != built
    first.close()
    second = open_database(spec)
    assert second.conn is conn
    assert _state(second) == built
    # The AUTOINCREMENT counter is back too: the next pet gets the id a fresh copy gives it.
    with second.allowing(Effect.WRITE):
        second.conn.execute("INSERT INTO pets (owner_id, name) VALUES (1, 'New')")
    assert second.trusted("SELECT max(pet_id) FROM pets").fetchone()[0] == 3
    second.close()


def test_a_write_noted_for_one_table_also_mends_what_its_cascade_changed() -> None:
    spec = _spec()
    first = open_database(spec)
    built = _state(first)
    # What a write tool naming only "owners" does: the cascade deletes a pet.
    with first.guarded(Effect.WRITE, frozenset({"owners"})):
        first.conn.execute("DELETE FROM owners WHERE owner_id = 1")
    assert len(_state(first)["pets"]) == 1
    first.close()
    second = open_database(spec)
    assert _state(second) == built
    second.close()


def test_a_tool_calls_statements_stay_prepared_on_the_next_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    env = load_domain("retail")
    tool = next(t for t in env.tools if t.name == "search_customers")
    asked: list[int] = []
    original = Database._authorize

    def counting(self: Database, *args: Any) -> int:
        asked.append(args[0])
        return original(self, *args)

    monkeypatch.setattr(Database, "_authorize", counting)
    first = open_database(env.database)
    ToolExecutor(env, first).call(tool.name, {"name": "a"})
    assert asked, "the first call prepares its statement, asking the authorizer"
    first.close()
    second = open_database(env.database)
    asked.clear()
    result = ToolExecutor(env, second).call(tool.name, {"name": "a"})
    assert result.structured
    assert asked == []
    second.close()


def test_a_closed_copy_cannot_be_used_though_its_connection_lives_on() -> None:
    spec = _spec()
    db = open_database(spec)
    db.close()
    with pytest.raises(sqlite3.ProgrammingError):
        db.conn.execute("SELECT 1")
    with pytest.raises(sqlite3.OperationalError, match="shutting down"):
        db.query("SELECT count(*) FROM owners")
    open_database(spec).close()


@pytest.mark.parametrize(
    "change",
    [
        lambda db: db.conn.set_authorizer(None),
        lambda db: db.conn.create_function("f", 0, lambda: 1),
        lambda db: setattr(db.conn, "row_factory", sqlite3.Row),
        lambda db: db.trusted("CREATE TABLE extra (x)"),
        lambda db: db.trusted("CREATE TEMP TABLE scratch (x)"),
        lambda db: db.trusted("BEGIN"),
    ],
    ids=["authorizer", "function", "row_factory", "schema", "temp_schema", "open_transaction"],
)
def test_a_connection_anyone_changed_is_never_handed_on(change: Any) -> None:
    spec = _spec()
    db = open_database(spec)
    conn = db.conn
    change(db)
    db.close()
    again = open_database(spec)
    assert again.conn is not conn
    # The new copy is guarded as every copy is.
    with pytest.raises(sqlite3.DatabaseError):
        again.conn.execute("DELETE FROM owners")
    assert again.trusted("SELECT count(*) FROM sqlite_master WHERE name IN ('extra', 'scratch')").fetchone()[0] == 0
    again.close()


def test_a_database_with_triggers_is_copied_fresh_each_time() -> None:
    spec = _spec(
        DDL + "CREATE TRIGGER keep AFTER DELETE ON owners BEGIN INSERT INTO notes (body) VALUES ('gone'); END;"
    )
    db = open_database(spec)
    conn = db.conn
    db.close()
    again = open_database(spec)
    assert again.conn is not conn
    again.close()


def test_two_copies_open_at_once_are_two_databases() -> None:
    spec = _spec()
    a = open_database(spec)
    a.close()
    b, c = open_database(spec), open_database(spec)
    assert b.conn is not c.conn
    with b.allowing(Effect.WRITE):
        b.conn.execute("DELETE FROM notes")
    assert c.trusted("SELECT count(*) FROM notes").fetchone()[0] == 2
    b.close()
    c.close()


def test_tool_writes_leave_nothing_for_the_next_copy_of_a_domain_database() -> None:
    env = load_domain("retail")
    fresh = open_database(env.database)  # held open: a copy made by the backup API, not the pool
    expected = fresh.snapshot()
    db = open_database(env.database)
    tools = ToolExecutor(env, db)
    tools.call(
        "create_address",
        {
            "customer_id": 1,
            "label": "other",
            "street": "1 Pine Rd",
            "city": "Oslo",
            "postal_code": "0150",
            "country": "NO",
        },
    )
    tools.call("update_customer", {"customer_id": 2, "city": "Bergen"})
    tools.call("delete_order_item", {"item_id": 1})
    assert db.snapshot() != expected
    conn = db.conn
    db.close()
    again = open_database(env.database)
    assert again.conn is conn
    assert again.snapshot() == expected
    again.close()
    fresh.close()


def test_handing_copies_out_and_back_opens_no_temp_database() -> None:
    # SQLite opens a connection's temp database (90 KiB) the first time anything touches it.
    spec = _spec()
    db = open_database(spec)
    conn = db.conn
    db.close()
    again = open_database(spec)
    assert again.conn is conn
    assert [name for _, name, _ in again.trusted("PRAGMA database_list").fetchall()] == ["main"]
    again.close()
