"""A small third-party-style MCP server for the tests: notes in an SQLite file another program owns.

    python notes_server.py DB [--crash-after N] [--no-tools] [--path-tool]

Tools: ``list_notes`` and ``get_note`` (read-only), ``add_note`` (a write). With
``--crash-after N`` the process exits abruptly (no answer) on its N+1-th tool call, as a
crashing server does; ``--no-tools`` lists no tools at all; ``--path-tool`` adds
``count_notes(database)``, which takes the database's own path and says it in its answer. Runs as a script, like any
server a user points ``--server`` at.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("--crash-after", type=int, default=-1)
    parser.add_argument("--no-tools", action="store_true")
    parser.add_argument("--path-tool", action="store_true")
    args = parser.parse_args()
    server = MCPServer("notes")
    calls = {"n": 0}

    def tick() -> None:
        calls["n"] += 1
        if 0 <= args.crash_after < calls["n"]:
            os._exit(3)

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(args.db)
        conn.row_factory = sqlite3.Row
        return conn

    if not args.no_tools:

        @server.tool(name="list_notes", description="List every note (id and title)", annotations=READ)
        def list_notes() -> dict[str, Any]:
            tick()
            with connect() as conn:
                rows = conn.execute("SELECT note_id, title FROM notes ORDER BY note_id").fetchall()
            return {"rows": [dict(r) for r in rows]}

        @server.tool(name="get_note", description="Get one note by its id", annotations=READ)
        def get_note(note_id: int) -> dict[str, Any]:
            tick()
            with connect() as conn:
                row = conn.execute("SELECT * FROM notes WHERE note_id = ?", (note_id,)).fetchone()
            if row is None:
                raise ValueError(f"no note {note_id}")
            return dict(row)

        @server.tool(name="add_note", description="Add a note", annotations=WRITE)
        def add_note(title: str, body: str) -> dict[str, Any]:
            tick()
            with connect() as conn:
                cur = conn.execute("INSERT INTO notes (title, body) VALUES (?, ?)", (title, body))
            return {"note_id": cur.lastrowid, "title": title}

    if args.path_tool:

        @server.tool(name="count_notes", description="Count the notes of a database file", annotations=READ)
        def count_notes(database: str) -> dict[str, Any]:
            tick()
            if database != args.db:
                raise ValueError(f"no notes database at {database}")
            with connect() as conn:
                (count,) = conn.execute("SELECT count(*) FROM notes").fetchone()
            return {"database": database, "count": count, "summary": f"{database} holds {count} notes"}

    server.run("stdio")


if __name__ == "__main__":
    main()
