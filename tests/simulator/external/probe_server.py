"""A lax stdio MCP server for the planner's probe: read tools that misbehave on purpose.

    python probe_server.py [--slow] [--stuck] [--crash] [--gone MARKER] [--flaky COUNTER] [--big N]

Always: ``list_codes`` (one code, ``doc-1``), ``list_docs`` (one document whose ``body`` is
``--big`` characters long, 2 MB by default) and ``lookup_code(code)``, whose input schema
asks for a code like ``ABC-1`` but which, like many servers, checks nothing and answers
anything. The flags add read tools that fail:

- ``--slow``: ``get_slow`` never answers, but the server goes on answering other requests;
- ``--stuck``: ``get_stuck`` blocks the server's event loop: nothing is answered any more;
- ``--crash``: ``get_crash`` kills the process (``os._exit``), no answer;
- ``--gone MARKER``: ``get_crash`` also writes MARKER, and a server started while MARKER
  exists exits at once: once crashed, it cannot be started again;
- ``--flaky COUNTER``: ``get_flaky`` answers its first call (counted in the file COUNTER,
  across processes) and none after, as ``get_slow``.

Every tool says it is read-only (``readOnlyHint``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp.server import Server
from mcp.server.stdio import stdio_server

READ = types.ToolAnnotations(read_only_hint=True)
NO_ARGUMENTS: dict[str, Any] = {"type": "object", "properties": {}}
CODE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]+$", "description": "A product code such as 'ABC-1'"}
    },
    "required": ["code"],
    "additionalProperties": False,
}


def _tool(name: str, description: str, schema: dict[str, Any] = NO_ARGUMENTS) -> types.Tool:
    return types.Tool(name=name, description=description, input_schema=schema, annotations=READ)


def _answer(structured: dict[str, Any]) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(structured))], structured_content=structured
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slow", action="store_true")
    parser.add_argument("--stuck", action="store_true")
    parser.add_argument("--crash", action="store_true")
    parser.add_argument("--gone", type=Path)
    parser.add_argument("--flaky", type=Path)
    parser.add_argument("--big", type=int, default=2_000_000)
    args = parser.parse_args()
    if args.gone is not None and args.gone.exists():
        print("probe server: the backend is gone", file=sys.stderr, flush=True)  # noqa: T201
        sys.exit(4)

    tools = [
        _tool("list_codes", "List the product codes"),
        _tool("list_docs", "List the documents"),
        _tool("lookup_code", "Look up a product by its code", CODE_SCHEMA),
    ]
    if args.slow:
        tools.append(_tool("get_slow", "Get the slow status"))
    if args.stuck:
        tools.append(_tool("get_stuck", "Get the stuck status"))
    if args.crash or args.gone is not None:
        tools.append(_tool("get_crash", "Get the crash status"))
    if args.flaky is not None:
        tools.append(_tool("get_flaky", "Get the flaky status"))

    async def list_tools(_ctx: Any, _params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(_ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        name = params.name
        if name == "list_codes":
            return _answer({"rows": [{"code": "doc-1"}]})
        if name == "list_docs":
            return _answer({"rows": [{"doc_id": 1, "body": "x" * args.big}]})
        if name == "lookup_code":
            code = (params.arguments or {}).get("code")
            return _answer({"code": code, "product": f"the product {code}"})
        if name == "get_flaky":
            calls = int(args.flaky.read_text()) if args.flaky.exists() else 0
            args.flaky.write_text(str(calls + 1))
            if calls == 0:
                return _answer({"status": "fine"})
        if name in {"get_slow", "get_flaky"}:
            await anyio.sleep(3600)
        if name == "get_stuck":
            time.sleep(3600)  # noqa: ASYNC251 (blocks the event loop on purpose: the whole server hangs)
        if name == "get_crash":
            if args.gone is not None:
                args.gone.write_text("gone\n")
            os._exit(3)
        return types.CallToolResult(content=[types.TextContent(type="text", text=f"no tool {name}")], is_error=True)

    async def serve() -> None:
        server = Server("probe", version="1", on_list_tools=list_tools, on_call_tool=call_tool)
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    anyio.run(serve)


if __name__ == "__main__":
    main()
