"""A tool result is capped: a read past the cap is refused, saying what fits; a committed write is shown cut.

The database is a real SQLite file, as ``--database`` would give it, with megabytes in a
TEXT cell; the tools are the ones derived from it, served in process over MCP.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import mcp
import mcp_types as types
import pytest

from schemas import DatabaseSpec, Effect, Environment, ResultShape, SqlImplementation, ToolSpec
from tests.toolservers.test_server import Recorder
from toolservers import MAX_RESULT_CHARS, ResultTooLargeError, ToolServer, build_tool_server
from toolservers.derive import derive_environment
from toolservers.server import ERROR_CODE_META

pytestmark = pytest.mark.anyio

HUGE = 5 * 1024 * 1024
CHAPTER = 100_000


def text_of(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


def wire(value: Any) -> str:
    """The JSON text a result had before the cap: what an uncut result must still be, byte for byte."""
    return json.dumps(value, ensure_ascii=False)


def documents_file(path: Path, chapters: int = 10, extra: list[tuple[int, str, str]] | None = None) -> Path:
    """A memo, a 5 MiB scan, then ``chapters`` chapters of 100,000 characters each."""
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE document (id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT)")
        conn.execute("INSERT INTO document VALUES (1, 'memo', 'short'), (2, 'scan', ?)", ("x" * HUGE,))
        conn.executemany(
            "INSERT INTO document VALUES (?, ?, ?)",
            [(i, f"chapter {i}", "y" * CHAPTER) for i in range(3, chapters + 3)],
        )
        conn.executemany("INSERT INTO document VALUES (?, ?, ?)", extra or [])
    conn.close()
    return path


@asynccontextmanager
async def served(environment: Environment, recorder: Recorder) -> AsyncIterator[tuple[ToolServer, mcp.Client]]:
    server = build_tool_server(environment, on_event=recorder)
    try:
        async with mcp.Client(server.server) as client:
            yield server, client
    finally:
        server.close()


async def test_a_read_past_the_cap_is_refused_with_its_size_and_what_fits(tmp_path: Path) -> None:
    recorder = Recorder()
    async with served(derive_environment(documents_file(tmp_path / "docs.sqlite")), recorder) as (_, client):
        memo = await client.call_tool("get_document", {"id": 1})
        scan = await client.call_tool("get_document", {"id": 2})
        chapters = await client.call_tool("search_documents", {"title": "chapter"})
        fitting = await client.call_tool("search_documents", {"title": "chapter", "limit": 2})
    # A small result is what it always was.
    assert not memo.is_error and text_of(memo) == wire({"id": 1, "title": "memo", "body": "short"})

    size = len(wire({"id": 2, "title": "scan", "body": "x" * HUGE}))
    assert scan.is_error and (scan.meta or {})[ERROR_CODE_META] == "result_too_large"
    assert text_of(scan).startswith(f"Error (result_too_large): the document row is {size:,} characters of JSON")
    assert f"its `body` alone is {HUGE:,} characters" in text_of(scan)
    assert f"over the {MAX_RESULT_CHARS:,}-character limit" in text_of(scan)
    assert "columns cannot be chosen" in text_of(scan)

    # Ten chapters of 100,000 characters: two fit, and the message says so.
    assert chapters.is_error and (chapters.meta or {})[ERROR_CODE_META] == "result_too_large"
    rows = [{"id": i, "title": f"chapter {i}", "body": "y" * CHAPTER} for i in range(3, 13)]
    assert f"the result is {len(wire({'rows': rows, 'count': 10})):,} characters of JSON" in text_of(chapters)
    assert "only the first 2 rows fit. Call again with `limit` at most 2" in text_of(chapters)
    assert not fitting.is_error and text_of(fitting) == wire({"rows": rows[:2], "count": 2})
    assert fitting.structured_content == {"rows": rows[:2], "count": 2}

    results = recorder.results()
    assert [r.error_code for r in results] == [None, "result_too_large", "result_too_large", None]
    assert max(len(r.text) for r in results) <= MAX_RESULT_CHARS


async def test_a_result_at_the_cap_is_whole_and_one_character_more_is_refused(tmp_path: Path) -> None:
    # Characters, not bytes, are counted: 'é' is two bytes in UTF-8 and one character here.
    room = MAX_RESULT_CHARS - len(wire({"id": 20, "title": "at", "body": ""}))
    at_cap = {"id": 20, "title": "at", "body": "é" * room}
    past_cap = {"id": 21, "title": "at", "body": "é" * (room + 1)}
    assert len(wire(at_cap)) == MAX_RESULT_CHARS
    db = documents_file(
        tmp_path / "docs.sqlite", chapters=0, extra=[(20, "at", "é" * room), (21, "at", "é" * (room + 1))]
    )
    async with served(derive_environment(db), Recorder()) as (_, client):
        whole = await client.call_tool("get_document", {"id": 20})
        refused = await client.call_tool("get_document", {"id": 21})
    assert not whole.is_error
    assert text_of(whole) == wire(at_cap) and whole.structured_content == at_cap
    assert refused.is_error and (refused.meta or {})[ERROR_CODE_META] == "result_too_large"
    assert f"is {len(wire(past_cap)):,} characters of JSON" in text_of(refused)


def test_the_executor_refuses_too_so_the_gold_replay_and_the_planners_see_what_the_agent_sees(tmp_path: Path) -> None:
    # 40 chapters: more than one batch of rows, so fetching stops once their text passes the cap.
    server = build_tool_server(derive_environment(documents_file(tmp_path / "docs.sqlite", chapters=40)))
    try:
        with pytest.raises(ResultTooLargeError) as caught:
            server.executor.call("search_documents", {"title": "chapter", "limit": 40})
    finally:
        server.close()
    error = caught.value
    assert error.code == "result_too_large" and error.limit == MAX_RESULT_CHARS and error.fit == 2
    rows = [{"id": i, "title": f"chapter {i}", "body": "y" * CHAPTER} for i in range(3, 43)]
    # Not every row was read: the size is what the rows fetched came to, a lower bound.
    assert not error.complete and MAX_RESULT_CHARS < error.size < len(wire({"rows": rows, "count": 40}))
    assert f"the result is at least {error.size:,} characters of JSON" in str(error)


async def test_a_write_whose_row_is_past_the_cap_succeeds_with_its_largest_values_shown_by_size(tmp_path: Path) -> None:
    recorder = Recorder()
    env = derive_environment(documents_file(tmp_path / "docs.sqlite", chapters=0))
    async with served(env, recorder) as (server, client):
        renamed = await client.call_tool("update_document", {"id": 2, "title": "renamed scan"})
        created = await client.call_tool("create_document", {"title": "t" * 200_000, "body": "b" * 300_000})
        stored = server.db.query(
            "SELECT id, title, length(title), length(body) FROM document WHERE id >= 2 ORDER BY id"
        )
    # The write was made, so it is no error; the 5 MiB body it returns is shown by its size.
    cut = {"id": 2, "title": "renamed scan", "body": f"<text of {HUGE:,} characters not shown>"}
    assert not renamed.is_error and renamed.structured_content == cut and text_of(renamed) == wire(cut)
    # Largest first, only until it fits: the 300,000-character body goes, the 200,000-character title stays.
    new = {"id": 3, "title": "t" * 200_000, "body": "<text of 300,000 characters not shown>"}
    assert not created.is_error and created.structured_content == new and text_of(created) == wire(new)
    assert [tuple(r) for r in stored] == [(2, "renamed scan", 12, HUGE), (3, "t" * 200_000, 200_000, 300_000)]
    results = recorder.results()
    assert [(r.is_error, r.affected) for r in results] == [(False, 1), (False, 1)]
    assert [r.structured for r in results] == [cut, new]


def numbers_environment(rows: int) -> Environment:
    seed = (
        f"WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {rows}) "
        "INSERT INTO counter SELECT i, 0 FROM c;"
    )
    bump = ToolSpec(
        name="bump_all",
        description="Add one to every counter",
        input_schema={"type": "object", "properties": {}, "additionalProperties": False},
        implementation=SqlImplementation(
            statements=["UPDATE counter SET value = value + 1 RETURNING id, value"], result=ResultShape.ROWS
        ),
        effect=Effect.WRITE,
        table="counter",
    )
    ddl = f"CREATE TABLE counter (id INTEGER PRIMARY KEY, value INTEGER NOT NULL); {seed}"
    return Environment(id="counters", domain="counters", database=DatabaseSpec(ddl=ddl), tools=[bump])


async def test_a_write_returning_more_rows_than_fit_shows_the_first_and_counts_them_all() -> None:
    recorder = Recorder()
    async with served(numbers_environment(30_000), recorder) as (server, client):
        bumped = await client.call_tool("bump_all", {})
        total = server.db.query("SELECT count(*), sum(value) FROM counter")[0]
    assert tuple(total) == (30_000, 30_000)  # every row was changed
    assert not bumped.is_error
    shown = json.loads(text_of(bumped))  # no output schema: the text is the result
    assert shown["count"] == 30_000 and 0 < len(shown["rows"]) < 30_000
    assert shown["rows"] == [{"id": i, "value": 1} for i in range(1, len(shown["rows"]) + 1)]
    assert text_of(bumped) == wire(shown) and len(text_of(bumped)) <= MAX_RESULT_CHARS
    # As many as fit: one row more would not.
    more = {"rows": [*shown["rows"], {"id": len(shown["rows"]) + 1, "value": 1}], "count": 30_000}
    assert len(wire(more)) > MAX_RESULT_CHARS
    assert recorder.results()[0].affected == 30_000
