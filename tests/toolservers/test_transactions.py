"""Tools may not control transactions or change the connection: refused at load time, and again at call time.

The executor owns the transaction of a call (a savepoint, committed on success, rolled
back on error); a tool that says COMMIT, RELEASE or ROLLBACK TO would make an error
persist or undo other calls' writes. The hostile tools are built here, and smuggled past
the load-time checks where the call-time authorizer is what is under test.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from schemas import DatabaseSpec, Effect, Environment, ResultShape, SqlImplementation, ToolSpec
from schemas.errors import AuthorizationError, ToolDefinitionError
from toolservers import ToolExecutor, build_tool_server, open_database, save_environment
from toolservers.executor import _TAGS

DDL = """
CREATE TABLE notes (note_id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);
INSERT INTO notes (body) VALUES ('first');
"""
ADD = "INSERT INTO notes (body) VALUES (:body)"
BODY = {"type": "object", "properties": {"body": {"type": "string"}}, "required": ["body"]}
NOTHING = {"type": "object", "properties": {}}


def _tool(name: str, statements: list[str], effect: Effect, schema: dict[str, object] | None = None) -> ToolSpec:
    return ToolSpec(
        name=name,
        description=f"{name} (hostile)",
        input_schema=schema or NOTHING,
        implementation=SqlImplementation(statements=statements, result=ResultShape.AFFECTED),
        effect=effect,
    )


def notes_environment(*extra: ToolSpec, path: Path | None = None) -> Environment:
    database = DatabaseSpec(path=str(path)) if path is not None else DatabaseSpec(ddl=DDL)
    return Environment(
        id="notes",
        domain="notes",
        database=database,
        tools=[_tool("add_note", [ADD], Effect.WRITE, BODY), *extra],
    )


HOSTILE = [
    ("write", [ADD, "COMMIT"]),
    ("write", [ADD, "END"]),
    ("write", [ADD, "RELEASE tool_call"]),
    ("write", [ADD, "RELEASE dialogsim_tool_call"]),
    ("write", ["ROLLBACK TO dialogsim_tool_call"]),
    ("read", ["BEGIN"]),
    ("read", ["BEGIN IMMEDIATE"]),
    ("read", ["  -- a comment first\n rollback"]),
    ("read", ["SAVEPOINT x", "SELECT count(*) FROM notes", "ROLLBACK TO x"]),
    ("read", ["VACUUM"]),
    ("write", ["UPDATE sqlite_sequence SET seq = 0"]),
    ("write", ["DELETE FROM sqlite_sequence"]),
    ("write", ["CREATE TEMP TABLE scratch (a)"]),
    ("read", ["PRAGMA foreign_keys = OFF"]),
    ("write", ["ATTACH ':memory:' AS other"]),
    ("read", ["REINDEX"]),
    ("read", ["ANALYZE"]),
]


@pytest.mark.parametrize(("effect", "statements"), HOSTILE, ids=[" / ".join(s) for _, s in HOSTILE])
def test_a_tool_that_changes_connection_state_is_refused_when_loaded(effect: str, statements: list[str]) -> None:
    hostile = _tool("sneaky", statements, Effect(effect), BODY if ADD in statements else None)
    with pytest.raises(ToolDefinitionError) as caught:
        build_tool_server(notes_environment(hostile))
    assert caught.value.tool == "sneaky"
    culprit = next(s for s in statements if s != ADD and not s.startswith("SELECT"))
    assert " ".join(culprit.split())[:40] in str(caught.value)
    assert "\n" not in str(caught.value)


def test_tools_serve_exits_2_naming_the_tool_and_the_statement(tmp_path: Path) -> None:
    env_file = tmp_path / "env.json"
    save_environment(notes_environment(_tool("sneaky", [ADD, "COMMIT"], Effect.WRITE, BODY)), env_file)
    done = subprocess.run(
        [sys.executable, "-m", "simulator", "tools", "serve", "--environment", str(env_file)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "'sneaky'" in lines[0] and "COMMIT" in lines[0] and "statement 1" in lines[0]
    assert done.stdout == ""


def smuggle(executor: ToolExecutor, name: str, statements: list[str]) -> None:
    """Replace a checked tool's SQL after the load-time checks (what a buggy or hostile loader could do)."""
    compiled = executor._tools[name]
    compiled.statements = [s + _TAGS[compiled.spec.effect] for s in statements]


def test_the_authorizer_refuses_transaction_control_at_call_time() -> None:
    server = build_tool_server(
        notes_environment(
            _tool("peek", ["SELECT count(*) FROM notes"], Effect.READ), _tool("poke", [ADD], Effect.WRITE, BODY)
        )
    )
    try:
        executor = server.executor
        for statements in (["BEGIN"], ["SAVEPOINT x"], ["ROLLBACK"], ["RELEASE dialogsim_tool_call"], ["COMMIT"]):
            smuggle(executor, "peek", statements)
            with pytest.raises(AuthorizationError, match="transaction control"):
                executor.call("peek", {})
            assert not server.db.conn.in_transaction
        smuggle(executor, "poke", [ADD, "COMMIT"])
        with pytest.raises(AuthorizationError):
            executor.call("poke", {"body": "smuggled"})
        smuggle(executor, "poke", ["UPDATE sqlite_sequence SET seq = 0"])
        with pytest.raises(AuthorizationError, match="sqlite_sequence"):
            executor.call("poke", {"body": "x"})
        assert server.db.query("SELECT body FROM notes ORDER BY note_id") == [("first",)]
        # The executor's own savepoints still work, and so do ordinary writes.
        assert executor.call("add_note", {"body": "second"}).affected == 1
        assert server.db.query("SELECT body FROM notes ORDER BY note_id") == [("first",), ("second",)]
    finally:
        server.close()


def test_a_committing_write_leaves_nothing_in_an_in_place_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(DDL)
    conn.close()
    server = build_tool_server(notes_environment(path=path), in_place=True)
    try:
        smuggle(server.executor, "add_note", [ADD, "COMMIT"])
        with pytest.raises(AuthorizationError):
            server.executor.call("add_note", {"body": "should not persist"})
    finally:
        server.close()
    reopened = sqlite3.connect(path)
    try:
        assert reopened.execute("SELECT body FROM notes").fetchall() == [("first",)]
    finally:
        reopened.close()


def test_harness_transactions_around_tool_calls_still_work() -> None:
    """A planner's or a dry run's own savepoint (on the connection) wraps tool calls as before."""
    db = open_database(DatabaseSpec(ddl=DDL))
    try:
        executor = ToolExecutor(notes_environment(), db)
        db.conn.execute("SAVEPOINT plan")
        executor.call("add_note", {"body": "tentative"})
        assert db.query("SELECT count(*) FROM notes") == [(2,)]
        db.conn.execute("ROLLBACK TO plan")
        db.conn.execute("RELEASE plan")
        assert db.query("SELECT count(*) FROM notes") == [(1,)]
        # A query may not control the transaction either.
        with pytest.raises(sqlite3.DatabaseError):
            db.query("BEGIN")
        assert not db.conn.in_transaction
    finally:
        db.close()


def test_schema_reading_pragmas_are_still_allowed_in_a_tool() -> None:
    describe = ToolSpec(
        name="describe_notes",
        description="The columns of the notes table.",
        input_schema=NOTHING,
        implementation=SqlImplementation(statements=["PRAGMA table_info(notes)"], result=ResultShape.ROWS),
    )
    server = build_tool_server(notes_environment(describe))
    try:
        rows = server.executor.call("describe_notes", {}).structured["rows"]
        assert [r["name"] for r in rows] == ["note_id", "body"]
    finally:
        server.close()


def test_schema_text_follows_every_change_of_the_schema() -> None:
    # Caches of what tools write and how tables compare are keyed on it: a change must show.
    from tests.conftest import shop_environment
    from toolservers.database import open_database

    db = open_database(shop_environment().database)
    try:
        before = db.schema_text()
        assert "CREATE TABLE" in before and before == db.schema_text()
        db.trusted("CREATE TABLE extra (x INTEGER)")
        after = db.schema_text()
        assert after != before and "extra" in after
        db.trusted("DROP TABLE extra")
        assert db.schema_text() == before
    finally:
        db.close()


def test_a_copy_knows_its_schema_text_and_still_sees_its_own_changes() -> None:
    # A copy of a DDL spec's template is given the template's text (not read again); it must
    # be what SQLite holds, under the copy's own cookie, so one change of the copy shows.
    from tests.conftest import shop_environment
    from toolservers.database import open_database

    spec = shop_environment().database
    first, second = open_database(spec), open_database(spec)
    try:
        held = first.conn.execute("SELECT group_concat(sql, ';') FROM sqlite_master").fetchone()[0]
        assert first.schema_text() == held
        first.trusted("CREATE TABLE extra (x INTEGER)")  # one change: the copy's cookie moves by one
        assert "extra" in first.schema_text()
        assert "extra" not in second.schema_text() and second.schema_text() == held
        third = open_database(spec)
        try:
            third.trusted("CREATE TABLE other (y INTEGER)")
            assert "other" in third.schema_text() and "extra" not in third.schema_text()
        finally:
            third.close()
    finally:
        first.close()
        second.close()
