"""Tables and columns with hostile names work end to end: derive, serve (every transport), stress.

The database is built here: a table named ``x"; DROP TABLE t;--`` with columns that
contain double quotes, semicolons and spaces, unicode names, and SQL keywords as names.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest

from schemas import DatabaseSpec, Environment
from simulator.cli import main
from simulator.stress import StressOptions, TargetSpec, run_stress
from simulator.stress.report import CheckStatus
from toolservers import TRANSPORTS, TransportName, connect_tool_server, load_environment, open_database
from toolservers.sql import quote_ident

pytestmark = pytest.mark.anyio

EVIL = 'x"; DROP TABLE t;--'
NAME = 'na"me'
DDL = f"""
CREATE TABLE {quote_ident(EVIL)} (
    "id" INTEGER PRIMARY KEY,
    {quote_ident(NAME)} TEXT NOT NULL,
    "select" TEXT,
    "prénom" TEXT,
    "a b;c" REAL
);
CREATE TABLE "order" (
    "id" INTEGER PRIMARY KEY,
    "x_id" INTEGER NOT NULL REFERENCES {quote_ident(EVIL)} ("id"),
    "when" TEXT
);
CREATE TABLE "日本" ("キー" INTEGER PRIMARY KEY, "値" TEXT);
CREATE TABLE t (id INTEGER PRIMARY KEY);
INSERT INTO {quote_ident(EVIL)} VALUES (1, 'quote " inside', 'kw', 'Zoë', 1.5), (2, 'plain', NULL, NULL, NULL);
INSERT INTO "order" VALUES (1, 1, '2024-01-05'), (2, 2, '2024-02-29');
INSERT INTO "日本" VALUES (1, '一');
INSERT INTO t VALUES (1);
"""


def test_quote_ident_doubles_quotes() -> None:
    assert quote_ident(EVIL) == '"x""; DROP TABLE t;--"'
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute(f"CREATE TABLE {quote_ident(EVIL)} ({quote_ident(NAME)} TEXT)")
        conn.execute(f"INSERT INTO {quote_ident(EVIL)} VALUES ('ok')")
        assert conn.execute(f"SELECT {quote_ident(NAME)} FROM {quote_ident(EVIL)}").fetchall() == [("ok",)]
    finally:
        conn.close()


@pytest.fixture
def hostile_db(tmp_path: Path) -> Path:
    path = tmp_path / "hostile.sqlite"
    conn = sqlite3.connect(path)
    try:
        conn.executescript(DDL)
    finally:
        conn.close()
    return path


@pytest.fixture
def hostile_env(hostile_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    out = tmp_path / "hostile.json"
    assert main(["tools", "derive", "--database", str(hostile_db), "--out", str(out)]) == 0
    assert "Derived" in capsys.readouterr().out
    return out


def _tool_for(env: Environment, category: str, table: str) -> str:
    return next(t.name for t in env.tools if t.category == category and t.table == table)


def _structured(result: types.CallToolResult) -> Any:
    assert not result.is_error, result.content
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return json.loads(block.text)


def test_derive_covers_every_hostile_table(hostile_env: Path) -> None:
    env = load_environment(hostile_env)
    assert {t.table for t in env.tools} == {EVIL, "order", "日本", "t"}
    get_evil = next(t for t in env.tools if t.category == "get" and t.table == EVIL)
    assert set(get_evil.output_schema["properties"]) == {"id", NAME, "select", "prénom", "a b;c"}  # type: ignore[index]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_hostile_names_are_served_over_every_transport(hostile_env: Path, transport: TransportName) -> None:
    env = load_environment(hostile_env)
    get, search = _tool_for(env, "get", EVIL), _tool_for(env, "search", EVIL)
    create, update = _tool_for(env, "create", EVIL), _tool_for(env, "update", EVIL)
    delete, related = _tool_for(env, "delete", "order"), _tool_for(env, "list_related", "order")
    name_param = "na_me"  # the parameter of column na"me: a plain identifier
    assert name_param in next(t for t in env.tools if t.name == create).input_schema["properties"]
    async with connect_tool_server(env, transport=transport, base_dir=hostile_env.parent) as conn:
        client = conn.client
        with anyio.fail_after(60):
            row = _structured(await client.call_tool(get, {"id": 1}))
            found = _structured(await client.call_tool(search, {"order_by": NAME, "descending": True}))
            ascending = _structured(await client.call_tool(search, {"order_by": NAME}))
            made = _structured(await client.call_tool(create, {name_param: 'new "one"; --'}))
            changed = _structured(await client.call_tool(update, {"id": made["id"], name_param: "renamed"}))
            orders = _structured(await client.call_tool(related, {"x_id": 1}))
            gone = _structured(await client.call_tool(delete, {"id": 2}))
        final = (await conn.finish()).snapshot()
    assert row[NAME] == 'quote " inside' and row["prénom"] == "Zoë" and row["a b;c"] == 1.5
    assert [r["id"] for r in found["rows"]] == [1, 2]  # sorted by na"me: "quote ..." after "plain"
    assert [r["id"] for r in ascending["rows"]] == [2, 1]
    assert changed[NAME] == "renamed"
    assert [o["when"] for o in orders["rows"]] == ["2024-01-05"]
    assert gone["id"] == 2
    assert set(final) == {EVIL, "order", "日本", "t"}
    assert ("renamed" in {r[1] for r in final[EVIL]}) and len(final["order"]) == 1


def test_snapshots_and_seeds_with_hostile_names(hostile_db: Path) -> None:
    db = open_database(DatabaseSpec(path=str(hostile_db)))
    try:
        assert set(db.snapshot()) == {EVIL, "order", "日本", "t"}
    finally:
        db.close()
    seeded = open_database(
        DatabaseSpec(
            ddl=f'CREATE TABLE {quote_ident(EVIL)} ({quote_ident(NAME)} TEXT, "select" INTEGER);',
            seed={EVIL: [{NAME: "seeded", "select": 1}]},
        )
    )
    try:
        assert seeded.snapshot() == {EVIL: [("seeded", 1)]}
    finally:
        seeded.close()


@pytest.mark.parametrize("transport", ["inprocess", "stdio"])
async def test_stress_runs_on_hostile_names(hostile_env: Path, transport: str) -> None:
    options = StressOptions(calls=3, load_calls=10, concurrency=2, call_timeout=5.0, connect_timeout=60)
    with anyio.fail_after(300):
        report = await run_stress(TargetSpec(environment=hostile_env, transport=transport), options)  # type: ignore[arg-type]
    assert report.state is not None and report.state.status is CheckStatus.PASSED, report.state
    assert not [f for f in report.findings if f.check in {"call.crash", "call.hang", "server.down"}]
    assert {t.name for t in report.tools} == {t.name for t in load_environment(hostile_env).tools}
